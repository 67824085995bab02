"""Feedback alignment and direct feedback alignment, checked against backprop.

Ground truth is autograd on a forward pass written here, independently of the library:
with B = W^T feedback alignment must *be* backprop, and the output layer's gradient never
depends on the feedback.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from course_lib.learning_rules.feedback_alignment import (
    FALinear,
    FeedbackMLP,
    alignment_angle,
    fa_backward,
    train_digits_mlp,
)

EXACT = {"rtol": 1e-12, "atol": 1e-14}  # float64: equal up to summation order


def data(n_in: int, n_out: int, batch: int = 9, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, n_in, generator=g, dtype=torch.float64)
    y = torch.randint(0, n_out, (batch,), generator=g)
    return x, y


def backprop_gradients(model: FeedbackMLP, x: torch.Tensor, y: torch.Tensor):
    """Autograd gradients of an MLP written here: tanh hidden layers, linear output."""
    params = []
    for layer in model.layers:
        params += [
            layer.weight.detach().clone().requires_grad_(True),
            layer.bias.detach().clone().requires_grad_(True),
        ]
    h = x
    n_layers = len(model.layers)
    for i in range(n_layers):
        w, b = params[2 * i], params[2 * i + 1]
        a = h @ w.T + b
        h = torch.tanh(a) if i < n_layers - 1 else a
    loss = F.cross_entropy(h, y)
    return torch.autograd.grad(loss, params)


def model_gradients(model: FeedbackMLP, x: torch.Tensor, y: torch.Tensor):
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    grads = []
    for layer in model.layers:
        grads += [layer.weight.grad.clone(), layer.bias.grad.clone()]
    return grads


def test_fa_backward_is_feedback_times_error():
    g = torch.Generator().manual_seed(1)
    delta = torch.randn(4, 3, generator=g)
    feedback = torch.randn(5, 3, generator=g)
    expected = torch.stack([feedback @ d for d in delta])  # B delta, one sample at a time
    assert_close(fa_backward(delta, feedback), expected)


def test_fa_backward_rejects_a_feedback_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"feedback must have shape \(any, 3\)"):
        fa_backward(torch.zeros(4, 3), torch.zeros(3, 5))


def test_alignment_angle_on_hand_made_vectors():
    assert alignment_angle(torch.tensor([1.0, 0.0]), torch.tensor([2.0, 0.0])) == pytest.approx(0)
    assert alignment_angle(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 3.0])) == pytest.approx(90)
    assert alignment_angle(torch.tensor([1.0, 1.0]), torch.tensor([-1.0, -1.0])) == pytest.approx(
        180
    )
    assert alignment_angle(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0])) == pytest.approx(45)
    matrix = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert alignment_angle(matrix, torch.tensor([[0.0, 1.0], [1.0, 0.0]])) == pytest.approx(90)
    with pytest.raises(ValueError, match="zero"):
        alignment_angle(torch.zeros(3), torch.ones(3))
    with pytest.raises(ValueError, match=r"shape of a, \(2, 2\)"):
        alignment_angle(matrix, torch.ones(4))


def test_fa_linear_forward_is_an_ordinary_linear_layer():
    layer = FALinear(4, 3, seed=2)
    x = torch.randn(5, 4)
    assert_close(layer(x), x @ layer.weight.T + layer.bias)
    assert tuple(layer.feedback.shape) == (4, 3)  # the shape of W^T


def test_fa_linear_rejects_a_feedback_of_the_wrong_shape():
    layer = FALinear(4, 3, seed=2)
    layer.feedback = torch.zeros(3, 4)  # W's shape instead of W^T's
    with pytest.raises(ValueError, match=r"feedback must have shape \(4, 3\)"):
        layer(torch.zeros(2, 4))


def test_fa_with_feedback_equal_to_w_transpose_is_backprop():
    model = FeedbackMLP((6, 7, 5, 4), rule="fa", seed=3).double()
    for layer in model.layers:
        layer.feedback = layer.weight.detach().T.clone()
    x, y = data(6, 4)
    for got, want in zip(
        model_gradients(model, x, y), backprop_gradients(model, x, y), strict=True
    ):
        assert_close(got, want, **EXACT)


@pytest.mark.parametrize("rule", ["fa", "dfa"])
def test_output_layer_gradient_is_backprop_with_random_feedback(rule):
    model = FeedbackMLP((6, 7, 5, 4), rule=rule, seed=4).double()
    x, y = data(6, 4, seed=1)
    got = model_gradients(model, x, y)
    want = backprop_gradients(model, x, y)
    assert_close(got[-2], want[-2], **EXACT)  # W_out
    assert_close(got[-1], want[-1], **EXACT)  # b_out
    # ...while the hidden layers' gradients are not backprop's (random B): the test can fail
    assert (got[0] - want[0]).norm() > 0.05 * want[0].norm()


def test_dfa_hidden_gradients_follow_noklands_formula():
    """delta_l = (B_l e) * tanh'(a_l), dW_l = delta_l h_{l-1}^T, with e = dL/dy."""
    model = FeedbackMLP((6, 7, 5, 4), rule="dfa", seed=5).double()
    x, y = data(6, 4, seed=2)
    got = model_gradients(model, x, y)
    w1, b1 = model.layers[0].weight.detach(), model.layers[0].bias.detach()
    w2, b2 = model.layers[1].weight.detach(), model.layers[1].bias.detach()
    w3, b3 = model.layers[2].weight.detach(), model.layers[2].bias.detach()
    h1 = torch.tanh(x @ w1.T + b1)
    h2 = torch.tanh(h1 @ w2.T + b2)
    logits = h2 @ w3.T + b3
    error = (torch.softmax(logits, 1) - F.one_hot(y, 4)) / len(y)  # dL/dy of mean cross-entropy
    b_1, b_2 = model.direct_feedback
    delta1 = (error @ b_1.T) * (1 - h1**2)
    delta2 = (error @ b_2.T) * (1 - h2**2)
    assert_close(got[0], delta1.T @ x, **EXACT)
    assert_close(got[1], delta1.sum(0), **EXACT)
    assert_close(got[2], delta2.T @ h1, **EXACT)
    assert_close(got[3], delta2.sum(0), **EXACT)


def test_fa_and_dfa_agree_with_one_hidden_layer_and_the_same_feedback():
    fa = FeedbackMLP((6, 8, 4), rule="fa", seed=6).double()
    dfa = FeedbackMLP((6, 8, 4), rule="dfa", seed=6).double()
    dfa.direct_feedback_0 = fa.layers[1].feedback.clone()
    x, y = data(6, 4, seed=3)
    for got, want in zip(model_gradients(dfa, x, y), model_gradients(fa, x, y), strict=True):
        assert_close(got, want, **EXACT)


@pytest.mark.parametrize("rule", ["fa", "dfa"])
def test_feedback_is_a_buffer_unchanged_by_training(rule):
    model = FeedbackMLP((6, 8, 8, 4), rule=rule, seed=7)
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    assert len(buffers) == 3 + 2  # one B per layer (FA) and one per hidden layer (DFA)
    assert all("feedback" in name for name in buffers)
    assert not any("feedback" in name for name, _ in model.named_parameters())
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    x, y = data(6, 4, seed=4)
    weights_before = model.layers[0].weight.detach().clone()
    for _ in range(20):
        optimizer.zero_grad()
        F.cross_entropy(model(x.float()), y).backward()
        optimizer.step()
    assert not torch.equal(model.layers[0].weight, weights_before)  # training did happen
    for name, before in buffers.items():
        assert torch.equal(dict(model.named_buffers())[name], before), name
    assert set(buffers) <= set(model.state_dict())  # saved with the model


def test_unknown_rule_is_rejected():
    with pytest.raises(ValueError, match="rule must be one of"):
        FeedbackMLP((4, 3, 2), rule="hebb")


def test_digits_bp_fa_dfa_learn_and_fa_aligns():
    histories = {rule: train_digits_mlp(rule, epochs=12, seed=0) for rule in ("bp", "fa", "dfa")}
    for rule, history in histories.items():
        assert history.test_accuracy[0] < 0.3, rule  # chance is 0.1
        assert history.test_accuracy[-1] > 0.9, (rule, history.test_accuracy[-1])
    # one seed gives one initial network for all three rules
    assert len({h.test_accuracy[0] for h in histories.values()}) == 1
    assert math.isnan(histories["bp"].angle[-1])
    for rule in ("fa", "dfa"):
        angle = histories[rule].angle
        assert 75 < angle[0] < 105, (rule, angle[0])  # random B: about orthogonal to W_out^T
        assert angle[-1] < 60, (rule, angle[-1])  # W_out^T has turned towards B
