"""Several seeds trained at once (chapters 08 and 09) and the parameter counts behind a
parameter-matched comparison, against ground truths that share no code with them:
hand-written parameter formulas, each seed trained alone by the existing loops, and BPTT
written out by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from course_lib.coursework import train_study
from course_lib.gated_cells import (
    CELLS,
    SeedEnsemble,
    count_free_parameters,
    hidden_size_for,
    make_gated_rnn,
    train_ensemble,
)
from course_lib.learning_rules.rflo import (
    RULES,
    LeakyRNN,
    delayed_response_batch,
    rflo_trial,
    rflo_updates,
    train_rflo_vs_bptt,
    train_rules_on_seeds,
)
from course_lib.tasks import Batch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# --- parameter counts: formulas written from the equations ----------------------------------


def expected_count(kind: str, n_in: int, h: int, n_out: int, n_dendrites: int = 4) -> int:
    readout = n_out * (h + 1)  # W_out and its bias
    if kind in ("lstm", "sublstm"):  # four blocks of W (with bias) and R
        return 4 * h * (n_in + h + 1) + readout
    light = 2 * h * n_in + 2 * 2 * h + 2 * h * h + readout  # W_z, W_h; BN scale+shift; U_z, U_h
    if kind == "light_gru":
        return light
    if kind == "ei_light_gru":
        return light - h  # no autapses: U_h's diagonal is pinned at zero
    # ENU: subunits W, b; the gates read only their own unit's subunits
    subunits = h * n_dendrites * (n_in + 1)
    return subunits + 2 * h * n_dendrites + 2 * 2 * h + 2 * h * h + readout


@pytest.mark.parametrize("kind", sorted(CELLS))
@pytest.mark.parametrize(("n_in", "h", "n_out"), [(2, 5, 3), (3, 8, 2)])
def test_free_parameters_match_the_formulas(kind, n_in, h, n_out):
    model = make_gated_rnn(kind, n_in, h, n_out)
    assert count_free_parameters(model) == expected_count(kind, n_in, h, n_out)


def test_masked_entries_do_not_count_but_stored_ones_do():
    model = make_gated_rnn("enu_light_gru", 2, 6, 3, n_dendrites=3)
    stored = sum(p.numel() for p in model.parameters())
    assert count_free_parameters(model) == expected_count("enu_light_gru", 2, 6, 3, 3) < stored


@pytest.mark.parametrize("kind", sorted(CELLS))
@pytest.mark.parametrize("target", [500, 4579])
def test_hidden_size_gives_the_closest_count(kind, target):
    counts = {h: expected_count(kind, 2, h, 3) for h in range(2, 80)}
    best = min(counts, key=lambda h: (abs(counts[h] - target), h))
    assert hidden_size_for(kind, target, 2, 3) == best


def test_lstm_and_light_gru_matched_to_32_lstm_units():
    target = expected_count("lstm", 2, 32, 3)
    assert target == 4579
    assert hidden_size_for("light_gru", target, 2, 3) == 45  # 2*45^2 + 11*45 + 3 = 4548


# --- seeds at once: each seed as if trained alone -------------------------------------------


def batches_of(n_batches: int, n_input: int = 2, steps: int = 14, width: int = 6):
    g = torch.Generator().manual_seed(5)
    out = []
    for _ in range(n_batches):
        targets = torch.zeros(steps, width, dtype=torch.long)
        targets[-3:] = torch.randint(1, 3, (width,), generator=g)
        targets[-1] = 0  # a decision period that ends inside the window
        out.append(Batch(torch.randn(steps, width, n_input, generator=g), targets))
    return out


@pytest.mark.parametrize("kind", sorted(CELLS))
def test_ensemble_gives_each_seed_its_own_gradient(kind):
    batch = batches_of(1)[0]
    seeds = (3, 7)
    ensemble = SeedEnsemble([make_gated_rnn(kind, 2, 6, 3, seed=s) for s in seeds])
    outputs, _ = ensemble(batch.inputs)
    torch.stack([nn.functional.cross_entropy(out.flatten(0, 1), batch.targets.flatten())
                 for out in outputs]).sum().backward()
    for index, seed in enumerate(seeds):
        alone = make_gated_rnn(kind, 2, 6, 3, seed=seed)
        outputs, _ = alone(batch.inputs)
        nn.functional.cross_entropy(outputs.flatten(0, 1), batch.targets.flatten()).backward()
        for name, parameter in alone.named_parameters():
            assert_close(ensemble.params[name].grad[index], parameter.grad, msg=name)


# The ENU is left out below: batch norm removes any constant shift of its input, so the
# gradient of a dendrite's bias is zero up to rounding (about 1e-9), and Adam, which divides
# by the gradient's size, turns that rounding noise into steps of up to lr. Its gradients
# are tested above.
@pytest.mark.parametrize("kind", ["lstm", "sublstm", "light_gru", "ei_light_gru"])
def test_ensemble_trains_each_seed_as_train_study_alone(kind):
    batches = batches_of(4)
    seeds = (3, 7)
    ensemble = SeedEnsemble([make_gated_rnn(kind, 2, 6, 3, seed=s) for s in seeds])
    history = train_ensemble(ensemble, batches, n_steps=4, lr=0.02, eval_every=2)
    assert tuple(history.loss.shape) == (4, 2) and history.eval_steps == [2, 4]
    for index, seed in enumerate(seeds):
        alone = make_gated_rnn(kind, 2, 6, 3, seed=seed)
        reference = train_study(alone, batches, n_steps=4, lr=0.02, eval_every=2, progress=False)
        assert_close(history.loss[:, index], torch.tensor(reference.loss), rtol=1e-4, atol=1e-6)
        assert_close(history.accuracy[:, index], torch.tensor(reference.accuracy))
        together = ensemble.seed(index).state_dict()
        # Adam divides by the gradient's size, so where a gradient is nearly zero the
        # rounding of a batched sum moves a weight by up to ~1e-4; a seed given another
        # seed's gradient would be off by about lr = 0.02 per step.
        for name, value in alone.state_dict().items():  # weights and batch-norm statistics
            assert_close(together[name], value, rtol=1e-3, atol=1e-3, msg=name)


def test_ensemble_eval_mode_uses_each_seeds_running_statistics():
    batches = batches_of(3)
    ensemble = SeedEnsemble([make_gated_rnn("light_gru", 2, 5, 3, seed=s) for s in (0, 1, 2)])
    train_ensemble(ensemble, batches, n_steps=3)
    ensemble.eval()
    with torch.no_grad():
        outputs, hidden = ensemble(batches[0].inputs)
    for index in range(3):
        alone = ensemble.seed(index).eval()
        with torch.no_grad():
            expected_out, expected_hidden = alone(batches[0].inputs)
        assert_close(outputs[index], expected_out)
        assert_close(hidden[index], expected_hidden)


def test_ensemble_rejects_mixed_cells():
    with pytest.raises(ValueError, match="one cell type"):
        SeedEnsemble([make_gated_rnn("lstm", 2, 4, 3), make_gated_rnn("sublstm", 2, 4, 3)])


# --- RFLO, BPTT and the readout-only control on several seeds -------------------------------


def drawn_batches(n_batches, batch_size=8, delay=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [delayed_response_batch(batch_size, delay_steps=delay, seed=g) for _ in range(n_batches)]


def test_rules_on_seeds_match_train_rflo_vs_bptt_seed_by_seed():
    """train_rflo_vs_bptt(seed=s) draws its batches from a generator seeded s + 1."""
    batches = drawn_batches(12, batch_size=16, delay=20, seed=1)
    result = train_rules_on_seeds(batches, seeds=[0, 4], rules=("RFLO", "BPTT"))
    _, rflo_alone, bptt_alone = train_rflo_vs_bptt(n_batches=12, batch_size=16, seed=0)
    history, _, _ = train_rflo_vs_bptt(n_batches=12, batch_size=16, seed=0)
    for name in ("w_in", "w_rec", "w_out"):
        assert_close(result.weights["RFLO"][name][0], getattr(rflo_alone, name))
        assert_close(result.weights["BPTT"][name][0], getattr(bptt_alone, name), rtol=1e-4,
                     atol=1e-6)
    assert_close(result.losses["RFLO"][:, 0], torch.tensor(history.rflo, dtype=torch.float32))
    assert_close(result.losses["BPTT"][:, 0], torch.tensor(history.bptt, dtype=torch.float32),
                 rtol=1e-4, atol=1e-6)
    # the second seed is a different network, trained on the same batches
    assert not torch.equal(result.weights["RFLO"]["w_rec"][0], result.weights["RFLO"]["w_rec"][1])
    assert_close(result.network("RFLO", 1).feedback, LeakyRNN(3, 32, 1, seed=4).feedback)


def test_readout_only_control_changes_only_w_out_by_the_delta_rule():
    batches = drawn_batches(3)
    result = train_rules_on_seeds(batches, seeds=[2], rules=("readout only",), lr=0.5)
    start = LeakyRNN(3, 32, 1, seed=2)
    trained = result.network("readout only", 0)
    assert torch.equal(trained.w_in, start.w_in) and torch.equal(trained.w_rec, start.w_rec)
    # the delta rule by hand: dW_out = lr < eps_t h_t^T >, with h from the frozen network
    w_out = start.w_out.detach().clone()
    with torch.no_grad():
        for inputs, targets in batches:
            _, hidden, _ = start(inputs)
            error = targets - hidden @ w_out.T
            w_out += 0.5 * torch.einsum("tbo,tbn->on", error, hidden) / error.shape[:2].numel()
    assert_close(trained.w_out, w_out)


def test_rflo_updates_of_a_seed_stack_are_each_networks_own():
    nets = [LeakyRNN(3, 7, 2, tau=4.0, seed=s) for s in (0, 1, 2)]
    g = torch.Generator().manual_seed(0)
    inputs, targets = torch.randn(9, 4, 3, generator=g), torch.randn(9, 4, 2, generator=g)
    stacked = [torch.stack([getattr(n, name).detach() for n in nets])
               for name in ("w_in", "w_rec", "w_out", "feedback")]
    losses, *deltas = torch.vmap(rflo_updates, in_dims=(0, 0, 0, 0, None, None, None))(
        *stacked, inputs, targets, 4.0)
    for k, net in enumerate(nets):
        alone = rflo_trial(net, inputs, targets)
        assert losses[k].mean().item() == pytest.approx(alone.loss, rel=1e-5)
        for delta, name in zip(deltas, ("w_in", "w_rec", "w_out"), strict=True):
            assert_close(delta[k], getattr(alone, name))


def test_rules_on_seeds_rejects_unknown_rules():
    with pytest.raises(ValueError, match="rules must be among"):
        train_rules_on_seeds(drawn_batches(1), rules=("Hebb",))


def test_every_rule_lowers_the_loss_on_the_shared_batches():
    batches = drawn_batches(40, batch_size=16, delay=5)
    result = train_rules_on_seeds(batches, seeds=[0, 1], rules=RULES)
    for rule in RULES:
        first, last = result.losses[rule][:5].mean(), result.losses[rule][-5:].mean()
        assert last < 0.8 * first, (rule, first, last)


def test_bptt_of_a_seed_is_minus_the_hand_written_gradient():
    """One BPTT step of the stacked training equals a step along autograd's gradient of a
    forward pass written here from Murray's eq. 1."""
    batches = drawn_batches(1, batch_size=5, delay=4)
    result = train_rules_on_seeds(batches, seeds=[3], rules=("BPTT",), lr=0.1)
    net = LeakyRNN(3, 32, 1, seed=3)
    leaves = [p.detach().clone().requires_grad_(True) for p in (net.w_in, net.w_rec, net.w_out)]
    w_in, w_rec, w_out = leaves
    inputs, targets = batches[0]
    h, loss = torch.zeros(5, 32), 0.0
    for t in range(inputs.shape[0]):
        h = h + (torch.tanh(h @ w_rec.T + inputs[t] @ w_in.T) - h) / 5.0
        loss = loss + 0.5 * ((targets[t] - h @ w_out.T) ** 2).sum(1).mean()
    grads = torch.autograd.grad(loss / inputs.shape[0], leaves)
    for name, leaf, grad in zip(("w_in", "w_rec", "w_out"), leaves, grads, strict=True):
        assert_close(result.weights["BPTT"][name][0], leaf - 0.1 * grad, rtol=1e-5, atol=1e-7)


def test_nn_module_count_is_unchanged_by_counting():
    model = make_gated_rnn("ei_light_gru", 2, 5, 3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    count_free_parameters(model)
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert isinstance(model, nn.Module)
