"""RFLO (Murray 2019) against BPTT, and its eligibility trace against a closed form.

BPTT is autograd through a forward pass written here from Murray's eq. 1, independently
of `LeakyRNN`. With W_rec = 0 and B = W_out^T RFLO must equal it exactly; with random
recurrent weights it must not (RFLO drops the recurrent term of the exact gradient).
"""

from __future__ import annotations

import ctypes

import pytest
import torch
from torch.testing import assert_close
from torch.utils._python_dispatch import TorchDispatchMode

from course_lib.learning_rules.feedback_alignment import alignment_angle
from course_lib.learning_rules.rflo import (
    LeakyRNN,
    delayed_response_batch,
    readout_update,
    rflo_trace_step,
    rflo_trial,
    rflo_weight_update,
    train_rflo_vs_bptt,
    trial_loss,
)

TAU = 4.0


def murray_bptt(w_in, w_rec, w_out, inputs, targets, tau):
    """-dL/dW by autograd, L = 1/(2T) sum_t |y*_t - y_t|^2 averaged over trials."""
    leaves = [w.detach().clone().requires_grad_(True) for w in (w_in, w_rec, w_out)]
    a_in, a_rec, a_out = leaves
    h = torch.zeros(inputs.shape[1], a_rec.shape[0], dtype=inputs.dtype)
    loss = 0.0
    for t in range(inputs.shape[0]):
        h = h + (-h + torch.tanh(a_rec @ h.T + a_in @ inputs[t].T).T) / tau  # eq. 1
        y = h @ a_out.T
        loss = loss + 0.5 * ((targets[t] - y) ** 2).sum(1).mean()
    loss = loss / inputs.shape[0]
    return [-g for g in torch.autograd.grad(loss, leaves)]


def trial_data(steps=12, batch=5, n_in=3, n_out=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(steps, batch, n_in, generator=g, dtype=torch.float64)
    y = torch.randn(steps, batch, n_out, generator=g, dtype=torch.float64)
    return x, y


def network(recurrent_gain: float, *, transport: bool, seed: int = 0) -> LeakyRNN:
    rnn = LeakyRNN(3, 10, 2, tau=TAU, gain=1.0, seed=seed).double()
    with torch.no_grad():
        rnn.w_out.mul_(10)  # a readout large enough for the output error to matter
        rnn.w_rec.mul_(recurrent_gain)
        if transport:
            rnn.feedback.copy_(rnn.w_out.T)
    return rnn


def test_rflo_is_bptt_without_recurrence_and_with_weight_transport():
    rnn = network(0.0, transport=True)
    x, y = trial_data()
    trial = rflo_trial(rnn, x, y)
    exact = murray_bptt(rnn.w_in, rnn.w_rec, rnn.w_out, x, y, TAU)
    for got, want in zip((trial.w_in, trial.w_rec, trial.w_out), exact, strict=True):
        assert want.abs().max() > 1e-3  # a real, non-vanishing gradient
        assert_close(got, want, rtol=1e-10, atol=1e-14)


def test_rflo_is_not_bptt_with_random_recurrence():
    """Sanity check: the dropped W_rec term matters. Measured for this network (gain 1.5,
    B = W_out^T): the recurrent update is off by 78% of the gradient's norm and points
    51 degrees away from it; the readout update is still exact."""
    rnn = network(1.5, transport=True)
    x, y = trial_data(steps=30)
    trial = rflo_trial(rnn, x, y)
    exact = murray_bptt(rnn.w_in, rnn.w_rec, rnn.w_out, x, y, TAU)
    mismatch = ((trial.w_rec - exact[1]).norm() / exact[1].norm()).item()
    assert mismatch > 0.2, mismatch
    assert alignment_angle(trial.w_rec, exact[1]) > 10
    assert_close(trial.w_out, exact[2], rtol=1e-10, atol=1e-14)  # the readout stays exact


def test_trace_step_by_hand():
    g = torch.Generator().manual_seed(1)
    trace = torch.randn(2, 3, 4, generator=g)
    slope, pre = torch.rand(2, 3, generator=g), torch.randn(2, 4, generator=g)
    expected = torch.empty(2, 3, 4)
    for b in range(2):
        for a in range(3):
            for c in range(4):
                expected[b, a, c] = slope[b, a] * pre[b, c] / TAU + (1 - 1 / TAU) * trace[b, a, c]
    assert_close(rflo_trace_step(trace, slope, pre, TAU), expected)


def test_online_trace_equals_the_offline_convolution():
    """p(t) = sum_{s<=t} (1/tau) (1 - 1/tau)^(t-s) phi'(u(s)) pre(s), all t at once."""
    g = torch.Generator().manual_seed(2)
    steps = 25
    slopes = torch.rand(steps, 3, 5, generator=g, dtype=torch.float64)
    pres = torch.randn(steps, 3, 6, generator=g, dtype=torch.float64)
    t = torch.arange(steps, dtype=torch.float64)
    lag = t[:, None] - t[None, :]
    kernel = torch.where(lag >= 0, (1 - 1 / TAU) ** lag.clamp(min=0) / TAU, 0.0)
    offline = torch.einsum("ts,sba,sbc->tbac", kernel, slopes, pres)
    trace = torch.zeros(3, 5, 6, dtype=torch.float64)
    for step in range(steps):
        trace = rflo_trace_step(trace, slopes[step], pres[step], TAU)
        assert_close(trace, offline[step], rtol=1e-12, atol=1e-14)


def test_weight_updates_by_hand():
    g = torch.Generator().manual_seed(3)
    error, feedback = torch.randn(4, 2, generator=g), torch.randn(3, 2, generator=g)
    trace, hidden = torch.randn(4, 3, 5, generator=g), torch.randn(4, 3, generator=g)
    expected = torch.zeros(3, 5)
    for b in range(4):
        signal = feedback @ error[b]  # [B eps]_a
        expected += 0.5 * signal[:, None] * trace[b] / 4
    assert_close(rflo_weight_update(error, feedback, trace, lr=0.5), expected)
    assert_close(
        readout_update(error, hidden), sum(torch.outer(error[b], hidden[b]) for b in range(4)) / 4
    )


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _glibc():
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = _MallInfo2
        return libc
    except (OSError, AttributeError):
        return None


LIBC = _glibc()


class _PeakHeap(TorchDispatchMode):
    """Bytes in use on the C heap (where CPU tensors live), sampled after every op."""

    def __init__(self):
        super().__init__()
        self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        info = LIBC.mallinfo2()
        self.peak = max(self.peak, info.uordblks + info.hblkhd)
        return out


def peak_bytes(run) -> int:
    peaks = []
    for _ in range(2):  # the first run also fills the dispatcher's caches
        info = LIBC.mallinfo2()
        start = info.uordblks + info.hblkhd
        with _PeakHeap() as tracker:
            run()
        peaks.append(tracker.peak - start)
    return min(peaks)


@pytest.mark.skipif(LIBC is None, reason="measures the heap through glibc's mallinfo2")
def test_rflo_memory_does_not_grow_with_trial_length_but_bptt_does():
    rnn = LeakyRNN(3, 64, 1, tau=TAU, seed=0)
    batch, traces = 32, 32 * 64 * (64 + 3) * 4  # B * N * (N + inputs) float32 numbers

    def trial(method: str, steps: int):
        g = torch.Generator().manual_seed(steps)
        x, y = torch.randn(steps, batch, 3, generator=g), torch.randn(steps, batch, 1, generator=g)
        if method == "rflo":
            return lambda: rflo_trial(rnn, x, y)
        return lambda: trial_loss(rnn(x)[0], y).backward()

    rflo_short, rflo_long = peak_bytes(trial("rflo", 20)), peak_bytes(trial("rflo", 160))
    bptt_short, bptt_long = peak_bytes(trial("bptt", 20)), peak_bytes(trial("bptt", 160))
    assert traces < rflo_long < 5 * traces  # a few copies of the traces, nothing more
    assert rflo_long < rflo_short + 64 * 1024, (rflo_short, rflo_long)  # 8x longer, same memory
    assert bptt_long > 4 * bptt_short, (bptt_short, bptt_long)  # the trajectory is stored


def test_tau_of_one_step_or_less_is_rejected():
    with pytest.raises(ValueError, match="tau must be more than 1 time step"):
        LeakyRNN(3, 4, 1, tau=1.0)
    with pytest.raises(ValueError, match="tau must be more than 1 time step"):
        rflo_trace_step(torch.zeros(2, 2), torch.zeros(2), torch.zeros(2), tau=0.5)


def test_bad_shapes_raise_value_errors_that_name_the_shape():
    rnn = LeakyRNN(3, 10, 2, tau=TAU)
    x = torch.zeros(6, 4, 3)
    with pytest.raises(ValueError, match=r"targets must have shape \(6, 4, 2\)"):
        rflo_trial(rnn, x, torch.zeros(6, 4, 1))
    rnn.feedback = torch.zeros(2, 10)  # W_out's shape instead of W_out^T's
    with pytest.raises(ValueError, match=r"feedback must have shape \(10, 2\)"):
        rflo_trial(rnn, x, torch.zeros(6, 4, 2))
    with pytest.raises(ValueError, match=r"feedback must have shape \(3, 2\)"):
        rflo_weight_update(torch.zeros(4, 2), torch.zeros(2, 3), torch.zeros(4, 3, 5))


def test_delayed_response_task_needs_memory():
    inputs, targets = delayed_response_batch(16, cue_steps=3, delay_steps=7, response_steps=4)
    assert tuple(inputs.shape) == (14, 16, 3) and tuple(targets.shape) == (14, 16, 1)
    sign = inputs[0, :, 0] - inputs[0, :, 1]
    assert set(sign.tolist()) == {-1.0, 1.0}
    assert torch.all(inputs[3:10, :, :2] == 0)  # the cue is gone during the delay...
    assert torch.all(targets[10:, :, 0] == sign)  # ...and must be reported after it
    assert torch.all(targets[:10] == 0)


def test_rflo_and_bptt_both_learn_the_delayed_response_task():
    history, _, _ = train_rflo_vs_bptt(n_batches=150, batch_size=16, seed=0)
    # answering 0 throughout (no memory of the cue) costs 0.5 * response / T
    no_memory = 0.5 * 10 / (5 + 20 + 10)
    rflo_end = sum(history.rflo[-10:]) / 10
    bptt_end = sum(history.bptt[-10:]) / 10
    assert history.rflo[0] == pytest.approx(history.bptt[0])  # one network, one first batch
    assert rflo_end < 0.35 * no_memory, rflo_end
    assert bptt_end < 0.35 * no_memory, bptt_end
