"""The catalog's PyTorch networks, each as a builder and as the code that writes the same builder.

Why two functions per network: the form trains the object, the cell text shows the code, and
both must give the same network (same layers; seeded, the same initial weights). Keeping the
builder and its writer side by side makes a change to one hard to miss in the other (and
tests/test_widgets_train.py compares them). Both read the input the trainer feeds: a float tensor
[N, F]; the last layer has one unit per class (cross-entropy) or one (regression, MSE).
"""

from __future__ import annotations

ACTIVATIONS = {"relu": "ReLU", "tanh": "Tanh", "gelu": "GELU"}


def mlp(n_features: int, n_outputs: int, hidden_units: int = 64, hidden_layers: int = 2,
        dropout: float = 0.0, activation: str = "relu"):
    """Linear → activation (→ dropout) blocks, then one unit per output."""
    from torch import nn

    layers, width = [], n_features
    for _ in range(hidden_layers):
        layers += [nn.Linear(width, hidden_units), getattr(nn, ACTIVATIONS[activation])()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = hidden_units
    return nn.Sequential(*layers, nn.Linear(width, n_outputs))


def mlp_code(n_features: int, n_outputs: int, hidden_units: int = 64, hidden_layers: int = 2,
              dropout: float = 0.0, activation: str = "relu") -> str:
    rows, width = [], n_features
    for _ in range(hidden_layers):
        rows.append(f"nn.Linear({width}, {hidden_units}), nn.{ACTIVATIONS[activation]}()"
                    + (f", nn.Dropout({dropout!r})" if dropout else ""))
        width = hidden_units
    rows.append(f"nn.Linear({width}, {n_outputs})")
    return "".join(f"    {r},\n" for r in rows)


def cnn(n_features: int, n_outputs: int, channels: int = 16, kernel_size: int = 3, hidden_units: int = 64,
        dropout: float = 0.0):
    """A 1-D convolution over the feature vector (as a 1-channel sequence), then a dense head."""
    from torch import nn

    layers = [nn.Unflatten(1, (1, n_features)),
              nn.Conv1d(1, channels, kernel_size=kernel_size, padding=kernel_size // 2), nn.ReLU(),
              nn.Flatten(), nn.Linear(channels * n_features, hidden_units), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers, nn.Linear(hidden_units, n_outputs))


def cnn_code(n_features: int, n_outputs: int, channels: int = 16, kernel_size: int = 3,
              hidden_units: int = 64, dropout: float = 0.0) -> str:
    rows = [f"nn.Unflatten(1, (1, {n_features})),  # [N, {n_features}] features → a 1-channel sequence",
            f"nn.Conv1d(1, {channels}, kernel_size={kernel_size}, padding={kernel_size // 2}), nn.ReLU(),",
            "nn.Flatten(),",
            f"nn.Linear({channels} * {n_features}, {hidden_units}), nn.ReLU(),"
            + (f" nn.Dropout({dropout!r})," if dropout else ""),
            f"nn.Linear({hidden_units}, {n_outputs}),"]
    return "".join(f"    {r}\n" for r in rows)


def odd_kernel(values: dict) -> str | None:
    if values.get("kernel_size", 1) % 2 == 0:
        return f"kernel_size must be odd (the convolution keeps the feature length), got {values['kernel_size']}"
    return None
