"""Learning rules without backprop's biologically awkward parts (course Part 3).

Backprop needs the forward weights in the feedback pathway (weight transport), errors
that are not local to a synapse, and, through time, a perfect memory of past activity.
Each module removes some of that, and is tested against backprop where they must agree:

- `feedback_alignment`: FA and DFA, a fixed random matrix ``B`` carries the error
  (Lillicrap et al. 2016; Nøkland 2016);
- `dendritic`: the dendritic error microcircuit, errors held in apical dendrites
  (Sacramento et al. 2018);
- `rflo`: random-feedback local online learning for recurrent networks (Murray 2019);
- `reward`: learning from a scalar reward: weight and node perturbation, REINFORCE and
  three-factor rules (Williams 1992; Werfel, Xie & Seung 2005; Fiete & Seung 2006;
  Frémaux & Gerstner 2016), and `miconi`: Miconi's (2017) rule for a rate RNN;
- `predictive_coding`: errors held by error nodes (Whittington & Bogacz 2017), and Z-IL,
  which equals backprop exactly (Song et al. 2020);
- `equilibrium_propagation`: contrastive Hebbian learning and equilibrium propagation
  (Scellier & Bengio 2017), errors as the difference of two phases;
- `eprop`: e-prop for spiking networks (Bellec et al. 2020), RFLO's spiking counterpart;
- `energy_digits`: chapter 12's experiment, the five rules (backprop, FA, Z-IL, predictive
  coding, EqProp) trained side by side on the digits.

Convention: feedback matrices are ``(post, pre)`` weights of the *feedback* pathway, so
``B`` has the shape of the ``W^T`` it replaces.
"""

from course_lib.learning_rules.dendritic import (
    Conductances,
    DendriticMicrocircuit,
    apical_silencing_update,
    apical_voltage,
    basal_prediction,
    dendritic_prediction_update,
    learn_self_prediction,
    train_microcircuit_regression,
)
from course_lib.learning_rules.feedback_alignment import (
    FALinear,
    FeedbackAlignmentFunction,
    FeedbackMLP,
    alignment_angle,
    fa_backward,
    train_digits_mlp,
)
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

__all__ = [
    "Conductances",
    "DendriticMicrocircuit",
    "FALinear",
    "FeedbackAlignmentFunction",
    "FeedbackMLP",
    "LeakyRNN",
    "alignment_angle",
    "apical_silencing_update",
    "apical_voltage",
    "basal_prediction",
    "delayed_response_batch",
    "dendritic_prediction_update",
    "fa_backward",
    "learn_self_prediction",
    "readout_update",
    "rflo_trace_step",
    "rflo_trial",
    "rflo_weight_update",
    "train_digits_mlp",
    "train_microcircuit_regression",
    "train_rflo_vs_bptt",
    "trial_loss",
]
