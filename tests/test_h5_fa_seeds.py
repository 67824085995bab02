"""Several seeds at once with controls (`train_digits_seeds`, `hidden_errors`,
`shuffle_entries`), and the frozen-hidden-layer control of the dendritic microcircuit.

Ground truths share no code with what they test: autograd on a forward pass written
here, `train_digits_mlp` (one seed, autograd through `FeedbackMLP`), a readout trained by
autograd on fixed random features, and invariants (a permutation keeps the values).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from course_lib.learning_rules.dendritic import DendriticMicrocircuit, train_microcircuit_regression
from course_lib.learning_rules.feedback_alignment import (
    FeedbackMLP,
    hidden_errors,
    load_digits_split,
    shuffle_entries,
    train_digits_mlp,
    train_digits_seeds,
)

EXACT = {"rtol": 1e-10, "atol": 1e-12}  # float64


def small_problem(seed: int = 0, members: int = 2, sizes=(5, 4, 3, 2), batch: int = 6):
    g = torch.Generator().manual_seed(seed)
    weights = [torch.randn(members, n_out, n_in, generator=g, dtype=torch.float64)
               for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)]
    x = torch.randn(members, batch, sizes[0], generator=g, dtype=torch.float64)
    y = torch.randint(0, sizes[-1], (members, batch), generator=g)
    return weights, x, y


def autograd_hidden_errors(weights, x, y):
    """dL/da of every hidden layer by autograd: tanh hidden layers, mean cross-entropy."""
    weights = [w.clone().requires_grad_(True) for w in weights]
    pre = []
    h = x
    for w in weights[:-1]:
        pre.append(h @ w.mT)
        h = torch.tanh(pre[-1])
    logits = h @ weights[-1].mT
    loss = sum(F.cross_entropy(logits[m], y[m]) for m in range(len(logits)))  # members apart
    return list(torch.autograd.grad(loss, pre))


def library_inputs(weights, x, y):
    activities = [x]
    for w in weights[:-1]:
        activities.append(torch.tanh(activities[-1] @ w.mT))
    logits = activities[-1] @ weights[-1].mT
    error = (logits.softmax(2) - F.one_hot(y, logits.shape[2])) / y.shape[1]
    slopes = [1 - h**2 for h in activities[1:]]
    return error, slopes


def test_bp_hidden_errors_are_autograd_gradients():
    weights, x, y = small_problem()
    expected = autograd_hidden_errors(weights, x, y)
    error, slopes = library_inputs(weights, x, y)
    got = hidden_errors("bp", error, weights, [None, None], slopes)
    for g, e in zip(got, expected, strict=True):
        assert_close(g, e, **EXACT)


def test_fa_with_transposed_weights_is_backprop():
    weights, x, y = small_problem(seed=1)
    expected = autograd_hidden_errors(weights, x, y)
    error, slopes = library_inputs(weights, x, y)
    feedback = [weights[1].mT, weights[2].mT]  # B_{l+1} = W_{l+1}^T
    for rule in ("fa", "shuffled"):  # "shuffled" uses whatever (already shuffled) B it gets
        got = hidden_errors(rule, error, weights, feedback, slopes)
        for g, e in zip(got, expected, strict=True):
            assert_close(g, e, **EXACT)


def test_dfa_with_one_hidden_layer_and_transposed_readout_is_backprop():
    weights, x, y = small_problem(seed=2, sizes=(5, 4, 3))
    expected = autograd_hidden_errors(weights, x, y)
    error, slopes = library_inputs(weights, x, y)
    got = hidden_errors("dfa", error, weights, [weights[1].mT], slopes)
    assert_close(got[0], expected[0], **EXACT)


def test_dfa_sends_the_output_error_not_the_layer_above():
    """With two hidden layers, DFA's first-layer error ignores W_2 entirely."""
    weights, x, y = small_problem(seed=3)
    error, slopes = library_inputs(weights, x, y)
    g = torch.Generator().manual_seed(9)
    direct = [torch.randn(2, n, 2, generator=g, dtype=torch.float64) for n in (4, 3)]
    got = hidden_errors("dfa", error, weights, direct, slopes)
    for layer in range(2):  # by hand: (e B_l^T) * phi'
        by_hand = torch.einsum("mbo,mno->mbn", error, direct[layer]) * slopes[layer]
        assert_close(got[layer], by_hand, **EXACT)


def test_readout_control_sends_no_error_to_hidden_layers():
    weights, x, y = small_problem(seed=4)
    error, slopes = library_inputs(weights, x, y)
    for delta in hidden_errors("readout", error, weights, [None, None], slopes):
        assert torch.count_nonzero(delta) == 0


def test_unknown_rule_is_refused():
    weights, x, y = small_problem()
    error, slopes = library_inputs(weights, x, y)
    with pytest.raises(ValueError, match="rule must be one of"):
        hidden_errors("backprop", error, weights, [None, None], slopes)
    with pytest.raises(ValueError, match="rule must be one of"):
        train_digits_seeds("random", seeds=(0,), epochs=1)


def test_shuffle_keeps_each_members_values_and_changes_their_places():
    g = torch.Generator().manual_seed(0)
    feedback = torch.randn(3, 6, 5, generator=g)
    shuffled = shuffle_entries(feedback, torch.Generator().manual_seed(1))
    assert shuffled.shape == feedback.shape
    for m in range(3):  # the same values, member by member (so the same norm) ...
        assert torch.equal(shuffled[m].flatten().sort().values, feedback[m].flatten().sort().values)
        assert not torch.equal(shuffled[m], feedback[m])  # ... in new places
    again = shuffle_entries(feedback, torch.Generator().manual_seed(2))
    assert not torch.equal(again, shuffled)  # a fresh order every call


def test_shuffling_a_constant_matrix_changes_nothing():
    constant = torch.full((2, 4, 3), 0.7)
    assert torch.equal(shuffle_entries(constant, torch.Generator().manual_seed(0)), constant)


@pytest.mark.parametrize("rule", ["bp", "fa", "dfa"])
def test_each_seed_of_the_batched_model_is_train_digits_mlp(rule):
    """The batched model reproduces the single-seed autograd training, seed by seed."""
    seeds = (0, 3)
    batched = train_digits_seeds(rule, seeds, hidden=(20, 12), epochs=2)
    assert batched.test_accuracy.shape == (2, 3) and batched.train_loss.shape == (2, 3)
    for row, seed in enumerate(seeds):
        single = train_digits_mlp(rule, hidden=(20, 12), epochs=2, seed=seed, progress=False)
        loss = np.array(single.train_loss[1:])
        assert_close(batched.train_loss[row, 1:], loss, rtol=1e-4, atol=0)
        # one test digit may flip when float32 sums differ in order
        assert np.abs(batched.test_accuracy[row] - single.test_accuracy).max() <= 1.5 / 450
        if rule != "bp":
            assert_close(batched.angle[row], np.array(single.angle), rtol=1e-4, atol=0)
    assert np.array_equal(batched.final_accuracy, batched.test_accuracy[:, -1])


def test_readout_control_is_a_readout_trained_on_frozen_random_features():
    """Autograd trains only the output layer of the seed's initial network."""
    seed, epochs, lr = 1, 2, 0.05
    control = train_digits_seeds("readout", (seed,), hidden=(16,), epochs=epochs, lr=lr)
    x_train, y_train, x_test, y_test = load_digits_split(seed=seed)
    net = FeedbackMLP((64, 16, 10), seed=seed)
    features = torch.tanh(F.linear(x_train, net.layers[0].weight, net.layers[0].bias)).detach()
    readout = net.layers[1]
    weight = readout.weight.detach().clone().requires_grad_(True)
    bias = readout.bias.detach().clone().requires_grad_(True)
    order = torch.Generator().manual_seed(seed + 1)
    for epoch in range(epochs):
        losses = []
        for batch in torch.randperm(len(x_train), generator=order).split(32):
            loss = F.cross_entropy(F.linear(features[batch], weight, bias), y_train[batch])
            grad_w, grad_b = torch.autograd.grad(loss, (weight, bias))
            with torch.no_grad():
                weight -= lr * grad_w
                bias -= lr * grad_b
            losses.append(loss.item())
        assert math.isclose(control.train_loss[0, epoch + 1], np.mean(losses), rel_tol=1e-4)


def test_shuffled_feedback_leaves_nothing_to_align_to():
    """FA's output weights turn towards B; with B shuffled every step they do not."""
    fa = train_digits_seeds("fa", (0, 1), hidden=(32,), epochs=3)
    shuffled = train_digits_seeds("shuffled", (0, 1), hidden=(32,), epochs=3)
    assert np.all(fa.angle[:, -1] < 75)
    assert np.all(np.abs(shuffled.angle[:, -1] - 90) < 10)


def test_feedback_scale_zero_is_the_readout_control():
    scaled = train_digits_seeds("fa", (2,), hidden=(16,), epochs=1, feedback_scale=0.0)
    readout = train_digits_seeds("readout", (2,), hidden=(16,), epochs=1)
    assert_close(scaled.train_loss[:, 1:], readout.train_loss[:, 1:], rtol=1e-6, atol=0)
    assert np.all(np.isnan(scaled.angle))  # no feedback, no angle


def test_frozen_hidden_layer_control_of_the_microcircuit_keeps_its_hidden_weights():
    """Chapter 07's control: lr_forward = (0, eta) changes only the output weights."""
    sizes = (4, 6, 3)
    start = DendriticMicrocircuit(sizes, seed=5)
    frozen, _ = train_microcircuit_regression(sizes, n_steps=20, eval_every=20,
                                              lr_forward=(0.0, 0.2), seed=5, progress=False)
    learning, _ = train_microcircuit_regression(sizes, n_steps=20, eval_every=20,
                                                lr_forward=(1.0, 0.2), seed=5, progress=False)
    assert torch.equal(frozen.forward[0], start.forward[0])
    assert not torch.equal(frozen.forward[1], start.forward[1])
    assert not torch.equal(learning.forward[0], start.forward[0])
