"""course_lib: the library behind "Brain-like constraints on neural networks".

One module per idea, in the order the course teaches them:

- `connectivity`: sparse masks applied as a `torch.nn.utils.parametrize` constraint;
- `models`: the continuous-time rate RNN;
- `tasks`: quiet, seeded neurogym datasets;
- `analysis`: accuracy per trial and other measurements of trained networks;
- `training`: a small, explicit training loop shared by the chapters;
- `plotting`: the figures the chapters share;
- `checks`: one module per assignment, used by the autograded test cells.
"""

__version__ = "0.1.0"
