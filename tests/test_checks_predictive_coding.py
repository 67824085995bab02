"""The assignment-12 checkers: the library's references, the source notebook's answers and
correct variants pass at several seeds; each plausible mistake is rejected with its own id
and a message in the student's terms (issue 17 §4).

The wrong answers are written here as a student would write them (one piece of the formula
changed), not taken from the checker's tables; the correct variants and the tables'
distinctness are checked too.
"""

from __future__ import annotations

import json

import pytest
import torch
from catalogue import AlwaysEqual, not_implemented, rejects, solution_answers
from conftest import ROOT

from course_lib.checks import predictive_coding as checks
from course_lib.checks.predictive_coding import (
    check_eqprop_update,
    check_error_nodes,
    check_hebbian_update,
    check_inference_step,
    check_symmetric_eqprop_update,
)
from course_lib.learning_rules.equilibrium_propagation import (
    chl_update,
    eqprop_update,
    hebbian_term,
    rate,
    symmetric_eqprop_update,
)
from course_lib.learning_rules.predictive_coding import (
    error_nodes,
    hebbian_update,
    inference_step,
)

SEEDS = (0, 1, 1999, 2017)
P = "predictive_coding."


def f(x):
    return torch.tanh(x)


def f_prime(x):
    return 1 - torch.tanh(x) ** 2


def rejected(check, wrong, mistake, message):
    rejects(check, wrong, mistake, message, allow_reference=True)


# ------------------------------------------------------------ the reference is refused


def test_the_reference_itself_is_refused():
    with pytest.raises(AssertionError, match="uses the course's reference") as excinfo:
        check_error_nodes(error_nodes)
    assert excinfo.value.mistake == P + "uses_reference"
    wrapped = lambda v, w, variances, step_size: inference_step(  # noqa: E731
        v, w, variances=variances, step_size=step_size)
    with pytest.raises(AssertionError, match="uses the course's reference"):
        check_inference_step(wrapped)


def test_a_detour_through_the_library_is_refused():
    """chl_update and hebbian_term compute equilibrium propagation's Hebbian terms too."""
    def via_chl(free_states, nudged_states, beta):
        return [u / beta for u in chl_update(free_states, nudged_states)]

    def via_hebbian_term(free_states, nudged_states, beta):
        return [(a - b) / beta for a, b in zip(hebbian_term(nudged_states),
                                               hebbian_term(free_states), strict=True)]

    for cheat in (via_chl, via_hebbian_term):
        with pytest.raises(AssertionError, match="uses the course's reference"):
            check_eqprop_update(cheat)


# ------------------------------------------------------------ correct answers pass


def errors_loop(values, weights, variances):
    errors = []
    for layer, x in enumerate(values):
        if layer == 0:
            errors.append(torch.zeros_like(x))
            continue
        mu = torch.einsum("ij,bj->bi", weights[layer - 1], torch.tanh(values[layer - 1]))
        errors.append((x - mu) / variances[layer])
    return errors


def inference_clone(values, weights, variances, step_size):
    errors = errors_loop(values, weights, variances)
    new = [v.clone() for v in values]
    for layer in range(1, len(values) - 1):
        new[layer] += step_size * (-errors[layer] + f_prime(values[layer])
                                   * (weights[layer].T @ errors[layer + 1].T).T)
    return tuple(new)


def hebbian_einsum(values, errors):
    return [torch.einsum("bi,bj->ij", e, torch.tanh(x)) / x.shape[0]
            for x, e in zip(values[:-1], errors[1:], strict=True)]


def eqprop_two_means(free_states, nudged_states, beta):
    out = []
    for k in range(len(free_states) - 1):
        post_b, pre_b = rate(nudged_states[k + 1]), rate(nudged_states[k])
        post_0, pre_0 = rate(free_states[k + 1]), rate(free_states[k])
        out.append(((post_b[:, :, None] * pre_b[:, None, :]).mean(0)
                    - (post_0[:, :, None] * pre_0[:, None, :]).mean(0)) / beta)
    return out


def symmetric_via_eqprop(positive_states, negative_states, beta):
    return [u / 2 for u in eqprop_two_means(negative_states, positive_states, beta)]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    ("check", "correct"),
    [(check_error_nodes, error_nodes), (check_error_nodes, errors_loop),
     (check_inference_step, inference_step), (check_inference_step, inference_clone),
     (check_hebbian_update, hebbian_update), (check_hebbian_update, hebbian_einsum),
     (check_eqprop_update, eqprop_update), (check_eqprop_update, eqprop_two_means),
     (check_symmetric_eqprop_update, symmetric_eqprop_update),
     (check_symmetric_eqprop_update, symmetric_via_eqprop)],
)
def test_correct_answers_pass(check, correct, seed):
    check(correct, seed=seed, allow_reference=True)


def test_the_solution_notebooks_answers_pass():
    """The functions of the source notebook's answer cells pass every checker at every
    seed (the nbgrader round trip, tests/test_nbgrader_pipeline.py, is slower)."""
    notebook = ROOT / "solutions" / "12_predictive_coding" / "12_predictive_coding.ipynb"
    cells = json.loads(notebook.read_text())["cells"]
    namespace = {}
    imports = next(c for c in cells if c["metadata"]["nbgrader"]["grade_id"] == "imports")
    exec("".join(imports["source"]).split("# f(x)")[0], namespace)  # noqa: S102
    namespace = solution_answers("12_predictive_coding", namespace)
    for name in ("error_nodes", "inference_step", "hebbian_update", "eqprop_update",
                 "symmetric_eqprop_update"):
        for seed in SEEDS:
            getattr(checks, f"check_{name}")(namespace[name], seed=seed)


# ------------------------------------------------------------ part 1: the error nodes


def errors_rule(prediction=lambda x, w: f(x) @ w.T, divide=lambda e, v: e / v,
                source=lambda layer: layer - 1, variance=lambda layer: layer, sign=1.0,
                first=lambda values: torch.zeros_like(values[0])):
    """A student's error nodes with one piece changed."""

    def wrong(values, weights, variances):
        errors = [first(values)]
        for layer in range(1, len(values)):
            mu = prediction(values[source(layer)], weights[layer - 1])
            errors.append(sign * divide(values[layer] - mu, variances[variance(layer)]))
        return errors

    return wrong


def errors_shifted(values, weights, variances):
    errors = error_nodes(values, weights, variances)
    return errors[1:] + errors[:1]


def errors_in_place(values, weights, variances):
    errors = [torch.zeros_like(values[0])]
    for layer in range(1, len(values)):
        values[layer] -= f(values[layer - 1]) @ weights[layer - 1].T
        errors.append(values[layer] / variances[layer])
    return errors


def errors_global_rng(values, weights, variances):
    return [e + 0 * torch.randn(()) for e in error_nodes(values, weights, variances)]


@pytest.mark.parametrize(
    ("wrong", "mistake", "message"),
    [
        (errors_rule(divide=lambda e, v: e), "errors_not_divided_by_variance",
         "the error is not divided by the variance"),
        (errors_rule(divide=lambda e, v: e * v), "errors_times_variance",
         "the error is multiplied by the variance"),
        (errors_rule(divide=lambda e, v: e / v**2), "errors_variance_squared",
         "already IS sigma_l\\^2"),
        (errors_rule(divide=lambda e, v: e / v**0.5), "errors_divided_by_sigma",
         "not by its square root"),
        (errors_rule(variance=lambda layer: layer - 1), "errors_variance_of_wrong_layer",
         "divided by the variance of the layer below"),
        (errors_rule(sign=-1.0), "errors_sign", "the sign is flipped"),
        (errors_rule(prediction=lambda x, w: x @ w.T), "errors_no_activation",
         "the layer below sends its rate"),
        (errors_rule(prediction=lambda x, w: f_prime(x) @ w.T), "errors_f_prime_not_f",
         "not the derivative"),
        (errors_rule(prediction=lambda x, w: f(x @ w.T)), "errors_activation_after_weights",
         "not f\\(W_\\{l-1\\} x_\\{l-1\\}\\)"),
        (errors_rule(prediction=lambda x, w: f(x) @ w), "errors_transposed_weights",
         "the weights are transposed"),
        (errors_rule(source=lambda layer: layer), "errors_predicted_from_wrong_layer",
         "each layer is predicted from itself"),
        (errors_shifted, "errors_shifted", "the list is shifted by one layer"),
        (errors_rule(first=lambda values: values[0]), "errors_input_not_zero",
         "nothing predicts the clamped input"),
        (lambda *args, **kw: error_nodes(*args, **kw)[1:], "errors_length",
         "returned 1 tensors for a network of 2 layers|returned \\d tensors for a network"),
        (lambda *args, **kw: error_nodes(*args, **kw)[-1], "errors_not_a_list",
         "must return a list of tensors, one per layer, got Tensor"),
        (lambda *args, **kw: None, "errors_not_a_list", "did you forget `return`"),
        (lambda *args, **kw: [e.T for e in error_nodes(*args, **kw)], "errors_transposed",
         "the transpose of"),
        (lambda *args, **kw: [e / 2 for e in error_nodes(*args, **kw)], "errors_scaled",
         "is 0.5 times eps_l = \\(x_l - W_\\{l-1\\} f\\(x_\\{l-1\\}\\)\\) / sigma_l\\^2"),
        (lambda *args, **kw: [e + 1e-3 for e in error_nodes(*args, **kw)], "errors_wrong_value",
         "\\[0\\] differs from eps_l"),
    ],
)
def test_error_mistakes_rejected(wrong, mistake, message):
    rejected(check_error_nodes, wrong, P + mistake, message)


@pytest.mark.parametrize(
    ("wrong", "mistake", "message"),
    [
        (errors_in_place, "common.in_place", "changed the tensor values\\[1\\] in place"),
        (errors_global_rng, "common.global_rng", "used or reseeded a global random generator"),
        (lambda *args, **kw: [e.double() for e in error_nodes(*args, **kw)], "common.wrong_dtype",
         "keep the dtype of the inputs"),
        (lambda *args, **kw: [e.as_subclass(AlwaysEqual) for e in error_nodes(*args, **kw)],
         "common.tensor_subclass", "plain torch.Tensor"),
        (lambda *args, **kw: [e.numpy() for e in error_nodes(*args, **kw)], "common.wrong_type",
         "must return a torch.Tensor"),
        (not_implemented, "common.not_implemented", "not implemented yet"),
    ],
)
def test_error_common_mistakes_rejected(wrong, mistake, message):
    rejected(check_error_nodes, wrong, mistake, message)


# ------------------------------------------------------------ part 2: one inference step


def step_rule(own=1.0, top_down=1.0, gain=f_prime, gain_layer=lambda layer: layer,
              through=lambda e, w: e @ w, weight=lambda layer: layer,
              above=lambda layer: layer + 1, apply=lambda x, h, drive: x + h * drive,
              moving=lambda n: range(1, n - 1), variances_used=True, whole=False):
    """A student's inference step with one piece changed."""

    def wrong(values, weights, variances, step_size):
        errors = error_nodes(values, weights, variances if variances_used else None)
        new = list(values)
        for layer in moving(len(values)):
            down = 0.0
            if layer < len(weights):
                down = through(errors[above(layer)], weights[weight(layer)])
            if whole:
                drive = gain(values[layer]) * (down - errors[layer])
            else:
                drive = -own * errors[layer] + top_down * gain(values[gain_layer(layer)]) * down
            new[layer] = apply(values[layer], step_size, drive)
        return new

    return wrong


def step_f_prime_of_prediction(values, weights, variances, step_size):
    errors = error_nodes(values, weights, variances)
    new = list(values)
    for layer in range(1, len(values) - 1):
        prediction = f(values[layer - 1]) @ weights[layer - 1].T
        drive = -errors[layer] + f_prime(prediction) * (errors[layer + 1] @ weights[layer])
        new[layer] = values[layer] + step_size * drive
    return new


def step_sequential(values, weights, variances, step_size):
    new = list(values)
    for layer in range(1, len(values) - 1):
        errors = error_nodes(new, weights, variances)  # from values already moved
        drive = -errors[layer] + f_prime(new[layer]) * (errors[layer + 1] @ weights[layer])
        new[layer] = new[layer] + step_size * drive
    return new


def step_returns_change(values, weights, variances, step_size):
    new = inference_step(values, weights, variances=variances, step_size=step_size)
    return [a - b for a, b in zip(new, values, strict=True)]


def step_into_callers_list(values, weights, variances, step_size):
    new = inference_step(values, weights, variances=variances, step_size=step_size)
    for layer in range(1, len(values) - 1):
        values[layer] = new[layer]
    return values


def step_in_place(values, weights, variances, step_size):
    new = inference_step(values, weights, variances=variances, step_size=step_size)
    for layer in range(1, len(values) - 1):
        values[layer].copy_(new[layer])
    return values


@pytest.mark.parametrize(
    ("wrong", "mistake", "message"),
    [
        (step_rule(top_down=-1.0), "inference_top_down_sign",
         "the sign of the top-down term is flipped"),
        (step_rule(own=-1.0), "inference_own_error_sign",
         "the sign of the layer's own error is flipped"),
        (step_rule(apply=lambda x, h, d: x - h * d), "inference_step_sign",
         "the step goes uphill"),
        (step_rule(top_down=0.0), "inference_top_down_missing", "the top-down term is missing"),
        (step_rule(own=0.0), "inference_own_error_missing", "the layer's own error is missing"),
        (step_rule(gain=torch.ones_like), "inference_no_f_prime", "f'\\(x_l\\) is missing"),
        (step_rule(gain=f), "inference_f_not_f_prime", "it needs the derivative"),
        (step_rule(gain=lambda x: f_prime(f(x))), "inference_f_prime_of_rate",
         "f' is taken of the rate f\\(x_l\\)"),
        (step_f_prime_of_prediction, "inference_f_prime_of_prediction",
         "f' is taken of the prediction"),
        (step_rule(gain_layer=lambda layer: layer + 1), "inference_f_prime_wrong_layer",
         "f' is taken on the layer above"),
        (step_rule(whole=True), "inference_f_prime_on_whole_drive",
         "f'\\(x_l\\) multiplies the whole drive"),
        (step_rule(through=lambda e, w: e @ w.T), "inference_transposed_weights",
         "comes down through the transposed weights"),
        (step_rule(weight=lambda layer: layer - 1), "inference_wrong_weights",
         "comes down through the wrong weights"),
        (step_rule(above=lambda layer: layer), "inference_wrong_error_layer",
         "the top-down term uses the layer's own error"),
        (step_rule(apply=lambda x, h, d: x + d), "inference_no_step_size",
         "the step size is missing"),
        (step_rule(apply=lambda x, h, d: x + h * h * d), "inference_step_size_twice",
         "the step size is applied twice"),
        (step_returns_change, "inference_returns_change", "this is the change of the values"),
        (lambda values, *rest, **kw: [v.clone() for v in values], "inference_values_unchanged",
         "no layer moved"),
        (step_rule(moving=lambda n: range(1, n)), "inference_output_not_clamped",
         "the output is clamped to the target"),
        (step_rule(moving=lambda n: range(0, n - 1)), "inference_input_moved",
         "the input is clamped"),
        (step_sequential, "inference_not_simultaneous",
         "compute every error from the OLD values first"),
        (step_rule(variances_used=False), "inference_errors_not_divided_by_variance",
         "the errors are not divided by the variances"),
        (lambda *args, **kw: step_rule()(*args, **kw)[:-1], "inference_length",
         "returned \\d tensors for a network of \\d layers"),
        (lambda *args, **kw: [v + 1e-3 for v in step_rule()(*args, **kw)], "inference_input_moved",
         "\\[0\\] differs from values\\[0\\]"),
        (lambda v, *rest, **kw: [a + 1e-3 * (0 < k < len(v) - 1) for k, a in
                           enumerate(step_rule()(v, *rest, **kw))], "inference_wrong_value",
         "\\[1\\] differs from x_l \\+ step_size"),
        (step_rule(top_down=-2.0, own=-0.5), "inference_energy_rises",
         "raises the energy F = sum_l sigma_l\\^2 \\|\\|eps_l\\|\\|\\^2 / 2 from"),
        (step_into_callers_list, "list_changed_in_place",
         "changed the caller's list `values`.*new = list\\(values\\)"),
        (step_in_place, "common.in_place", "changed the tensor values\\[1\\] in place"),
    ],
)
def test_inference_mistakes_rejected(wrong, mistake, message):
    mistake = mistake if mistake.startswith("common.") else P + mistake
    rejected(check_inference_step, wrong, mistake, message)


# ------------------------------------------------------------ part 3: the Hebbian update


def hebbian_rule(post=lambda e, x, k: e[k + 1], pre=lambda e, x, k: f(x[k]), sign=1.0,
                 mean=True, transpose=False):
    """A student's Hebbian update with one piece changed."""

    def wrong(values, errors):
        batch = values[0].shape[0] if mean else 1
        out = []
        for k in range(len(values) - 1):
            a, b = post(errors, values, k), pre(errors, values, k)
            out.append(sign * (b.T @ a if transpose else a.T @ b) / batch)
        return out

    return wrong


def hebbian_in_place(values, errors):
    batch = values[0].shape[0]
    for e in errors:
        e /= batch
    return [errors[k + 1].T @ f(values[k]) for k in range(len(values) - 1)]


@pytest.mark.parametrize(
    ("wrong", "mistake", "message"),
    [
        (hebbian_rule(sign=-1.0), P + "hebbian_sign", "the sign is flipped"),
        (hebbian_rule(pre=lambda e, x, k: x[k]), P + "hebbian_no_activation",
         "the synapse sees the RATE"),
        (hebbian_rule(pre=lambda e, x, k: f_prime(x[k])), P + "hebbian_f_prime_not_f",
         "the pre-synaptic factor is f'\\(x_l\\)"),
        (hebbian_rule(post=lambda e, x, k: e[k + 1] * f_prime(x[k + 1])),
         P + "hebbian_extra_f_prime", "as in backprop's delta"),
        (hebbian_rule(post=lambda e, x, k: e[k]), P + "hebbian_error_of_wrong_layer",
         "the error of the wrong layer"),
        (hebbian_rule(pre=lambda e, x, k: f(x[k + 1])), P + "hebbian_rate_of_wrong_layer",
         "the rate of the wrong layer"),
        (hebbian_rule(transpose=True), P + "hebbian_transposed", "the update is transposed"),
        (hebbian_rule(mean=False), P + "hebbian_batch_sum", "summed over the batch"),
        (lambda v, e: [u * v[0].shape[0] / v[0].shape[1] for u in hebbian_update(v, e)],
         P + "hebbian_scaled", "look for a wrong normalisation"),
        (lambda v, e: [u + 1e-3 for u in hebbian_update(v, e)], P + "hebbian_wrong_value",
         "\\[0\\] differs from eps_\\{l\\+1\\}\\^T f\\(x_l\\) / batch"),
        (lambda v, e: [torch.zeros(1)] + hebbian_update(v, e), P + "hebbian_length",
         "one update per weight matrix"),
        (hebbian_in_place, "common.in_place", "changed the tensor errors\\[1\\] in place"),
        (lambda v, e: [u.double() for u in hebbian_update(v, e)], "common.wrong_dtype",
         "keep the dtype of the inputs"),
        (lambda v, e: [u.as_subclass(AlwaysEqual) for u in hebbian_update(v, e)],
         "common.tensor_subclass", "plain torch.Tensor"),
        (not_implemented, "common.not_implemented", "not implemented yet"),
    ],
)
def test_hebbian_mistakes_rejected(wrong, mistake, message):
    rejected(check_hebbian_update, wrong, mistake, message)


# ------------------------------------------------------------ part 4: equilibrium propagation


def product(states, k, rate_fn=rate, mean=True, transpose=False, same_layer=False):
    post = rate_fn(states[k + 1])
    pre = post if same_layer else rate_fn(states[k])
    out = pre.T @ post if transpose else post.T @ pre
    return out / (states[0].shape[0] if mean else 1)


def eqprop_rule(nudged_weight=lambda beta: 1 / beta, free_weight=lambda beta: 1 / beta,
                **product_options):
    """A student's a(beta) H(nudged) - b(beta) H(free), with one piece changed."""

    def wrong(free_states, nudged_states, beta):
        return [nudged_weight(beta) * product(nudged_states, k, **product_options)
                - free_weight(beta) * product(free_states, k, **product_options)
                for k in range(len(free_states) - 1)]

    return wrong


def eqprop_difference_of_rates(free_states, nudged_states, beta, post_only=False):
    out = []
    batch = free_states[0].shape[0]
    for k in range(len(free_states) - 1):
        d_post = rate(nudged_states[k + 1]) - rate(free_states[k + 1])
        d_pre = rate(free_states[k]) if post_only else rate(nudged_states[k]) - rate(
            free_states[k])
        out.append(d_post.T @ d_pre / (batch * beta))
    return out


def eqprop_rate_of_difference(free_states, nudged_states, beta):
    batch = free_states[0].shape[0]
    return [rate(nudged_states[k + 1] - free_states[k + 1]).T
            @ rate(nudged_states[k] - free_states[k]) / (batch * beta)
            for k in range(len(free_states) - 1)]


def rate_prime(s):
    return 4 * rate(s) * (1 - rate(s))


EQPROP_PHASE_MISTAKES = [  # (id suffix, message), shared by the one-sided and symmetric rules
    ("phases_swapped", "the phases are swapped"),
    ("zero", "both Hebbian terms come from the same phase"),
    ("states_not_rates", "the Hebbian terms use the states s"),
    ("rate_derivative", "the Hebbian terms use rho'\\(s\\)"),
    ("plain_sigmoid", "the rate is the plain sigmoid\\(s\\)"),
    ("transposed", "the update is transposed"),
    ("same_layer", "each term pairs a layer with itself"),
    ("batch_sum", "the Hebbian terms are summed over the batch"),
    ("rates_differenced", "the rates are subtracted before the product"),
    ("post_difference_only", "only the post-synaptic rate is differenced"),
    ("states_differenced", "the states are subtracted before the rate is taken"),
]


def phase_wrong_answers(divisor, leading_first):
    """The wrong answers of EQPROP_PHASE_MISTAKES, in its order, for a rule
    (H(lead) - H(trail)) / divisor(beta), as functions of the student's arguments: the
    leading phase is the first argument (symmetric: positive) or the second (one-sided:
    nudged, after free)."""

    def student(wrong):
        return wrong if leading_first else lambda free, nudged, beta: wrong(nudged, free, beta)

    def rule(sign=1.0, **options):
        def wrong(lead, trail, beta):
            return [sign * (product(lead, k, **options) - product(trail, k, **options))
                    / divisor(beta) for k in range(len(lead) - 1)]
        return wrong

    def difference(post_only):
        def wrong(lead, trail, beta):
            return [u * beta / divisor(beta) for u in
                    eqprop_difference_of_rates(trail, lead, beta, post_only=post_only)]
        return wrong

    def of_difference(lead, trail, beta):
        return [u * beta / divisor(beta) for u in eqprop_rate_of_difference(trail, lead, beta)]

    return [student(wrong) for wrong in (
        rule(sign=-1.0),
        lambda lead, trail, beta: rule()(lead, lead, beta),
        rule(rate_fn=lambda s: s),
        rule(rate_fn=rate_prime),
        rule(rate_fn=torch.sigmoid),
        rule(transpose=True),
        rule(same_layer=True),
        rule(mean=False),
        difference(post_only=False),
        difference(post_only=True),
        of_difference,
    )]


@pytest.mark.parametrize(
    ("wrong", "mistake", "message"),
    [
        (eqprop_rule(lambda b: 1, lambda b: 1), "eqprop_no_beta",
         "the division by beta is missing"),
        (eqprop_rule(lambda b: b, lambda b: b), "eqprop_times_beta",
         "the difference is multiplied by beta"),
        (eqprop_rule(lambda b: 1 / b, lambda b: 1), "eqprop_beta_on_nudged_only",
         "beta divides only the nudged phase's term"),
        (eqprop_rule(lambda b: 1, lambda b: 1 / b), "eqprop_beta_on_free_only",
         "beta divides only the free phase's term"),
        (eqprop_rule(lambda b: 1 / b, lambda b: 0), "eqprop_free_term_missing",
         "the free phase's term is missing"),
        (eqprop_rule(lambda b: 1 / abs(b), lambda b: 1 / abs(b)), "eqprop_abs_beta",
         "divided by \\|beta\\|"),
        (eqprop_rule(lambda b: 0.5 / b, lambda b: 0.5 / b), "eqprop_two_beta",
         "that is the symmetric estimate's divisor"),
        (lambda *args, **kw: [u / 3 for u in eqprop_update(*args, **kw)], "eqprop_scaled",
         "is 0.3333 times"),
        (lambda *args, **kw: [u + 1e-3 for u in eqprop_update(*args, **kw)], "eqprop_wrong_value",
         "\\[0\\] differs from \\(rho\\(s\\^b_\\{l\\+1\\}\\)"),
        (lambda *args, **kw: eqprop_update(*args, **kw)[1:], "eqprop_length",
         "one update per weight matrix"),
    ]
    + [(wrong, f"eqprop_{suffix}", message) for wrong, (suffix, message)
       in zip(phase_wrong_answers(lambda b: b, leading_first=False), EQPROP_PHASE_MISTAKES,
              strict=True)],
)
def test_eqprop_mistakes_rejected(wrong, mistake, message):
    rejected(check_eqprop_update, wrong, P + mistake, message)


def eqprop_in_place(free_states, nudged_states, beta):
    for s in nudged_states:
        s.sub_(0)  # harmless
    free_states[-1].mul_(1.0001)
    return eqprop_update(free_states, nudged_states, beta)


def eqprop_into_callers_list(free_states, nudged_states, beta):
    free_states.append(free_states[-1])
    return eqprop_update(free_states[:-1], nudged_states, beta)


@pytest.mark.parametrize(
    ("wrong", "mistake", "message"),
    [
        (eqprop_in_place, "common.in_place", "changed the tensor free_states\\[\\d\\] in place"),
        (eqprop_into_callers_list, P + "list_changed_in_place",
         "changed the caller's list `free_states`"),
        (lambda *args, **kw: [u.float() if u.dtype == torch.float64 else u.double()
                        for u in eqprop_update(*args, **kw)], "common.wrong_dtype",
         "keep the dtype of the inputs"),
        (lambda *args, **kw: [u.as_subclass(AlwaysEqual) for u in eqprop_update(*args, **kw)],
         "common.tensor_subclass", "plain torch.Tensor"),
        (not_implemented, "common.not_implemented", "not implemented yet"),
    ],
)
def test_eqprop_common_mistakes_rejected(wrong, mistake, message):
    rejected(check_eqprop_update, wrong, mistake, message)


# ------------------------------------------------------------ part 5: the symmetric estimate


def symmetric_rule(positive_weight, negative_weight, **product_options):
    def wrong(positive_states, negative_states, beta):
        return [positive_weight(beta) * product(positive_states, k, **product_options)
                - negative_weight(beta) * product(negative_states, k, **product_options)
                for k in range(len(positive_states) - 1)]

    return wrong


@pytest.mark.parametrize(
    ("wrong", "mistake", "message"),
    [
        (symmetric_rule(lambda b: 1 / b, lambda b: 1 / b), "symmetric_not_halved",
         "the two phases are 2 beta apart"),
        (symmetric_rule(lambda b: 0.5, lambda b: 0.5), "symmetric_no_beta",
         "beta is missing"),
        (symmetric_rule(lambda b: 1, lambda b: 1), "symmetric_no_division",
         "the division by 2 beta is missing"),
        (symmetric_rule(lambda b: b / 2, lambda b: b / 2), "symmetric_times_beta",
         "the difference is multiplied by beta"),
        (symmetric_rule(lambda b: 1 / (2 * b), lambda b: 1), "symmetric_beta_on_one_term",
         "2 beta divides only one of the two terms"),
        (symmetric_rule(lambda b: 1, lambda b: 1 / (2 * b)), "symmetric_beta_on_one_term",
         "2 beta divides only one of the two terms"),
        (lambda *args, **kw: [u + 1e-3 for u in symmetric_eqprop_update(*args, **kw)],
         "symmetric_wrong_value", "differs from \\(H\\(s\\^\\{\\+b\\}\\)"),
    ]
    + [(wrong, f"symmetric_{suffix}", message) for wrong, (suffix, message)
       in zip(phase_wrong_answers(lambda b: 2 * b, leading_first=True), EQPROP_PHASE_MISTAKES,
              strict=True)],
)
def test_symmetric_mistakes_rejected(wrong, mistake, message):
    rejected(check_symmetric_eqprop_update, wrong, P + mistake, message)


# ------------------------------------------------------------ the tables themselves

TABLES = [
    (checks._errors_mistakes, checks._pc_cases, lambda c: c[:3],
     lambda c: checks._errors(*c[:3])),
    (checks._inference_mistakes, checks._pc_cases, lambda c: c,
     lambda c: checks._step(*c, gain=checks._f_prime_at)),
    (checks._hebbian_mistakes, checks._pc_cases,
     lambda c: (c[0], checks._errors(*c[:3])),
     lambda c: checks._hebbian(c[0], checks._errors(*c[:3]))),
    (checks._eqprop_mistakes, checks._eqprop_cases, lambda c: c,
     lambda c: checks._combine(checks._hebbian_term(c[1]), checks._hebbian_term(c[0]),
                               1 / c[2], 1 / c[2])),
    (checks._symmetric_mistakes, checks._symmetric_cases, lambda c: c,
     lambda c: checks._combine(checks._hebbian_term(c[0]), checks._hebbian_term(c[1]),
                               1 / (2 * c[2]), 1 / (2 * c[2]))),
]


@pytest.mark.parametrize(("mistakes", "cases", "arguments", "right"), TABLES)
def test_every_named_mistake_is_a_wrong_answer_with_its_own_message(mistakes, cases,
                                                                    arguments, right):
    """On every seeded case (the test cell's one-unit example aside: there a transpose is
    the matrix itself), each mistake of a table that applies differs from the right
    answer, so it can be named; and no two ids of one table share a message."""
    by_id = {}
    for case in list(cases(checks._generator(5)))[:-1]:
        expected = right(case)
        for mistake, message, wrong in mistakes(*arguments(case)):
            by_id.setdefault(mistake, set()).add(message)
            if wrong is not None:
                assert not checks._same_layers([w.to(torch.float64) for w in wrong],
                                               expected), mistake
    messages = [m for ms in by_id.values() for m in ms]
    assert len(messages) == len(set(messages))
