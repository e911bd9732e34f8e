"""The roles and features the router announces in WELCOME.Details.roles.

Only what is implemented and tested is announced; a feature is added here in
the same change that makes it work.
"""

from __future__ import annotations

from typing import Any

BROKER_FEATURES: dict[str, bool] = {
    "publisher_exclusion": True,
}
DEALER_FEATURES: dict[str, bool] = {}

CLIENT_ROLES = frozenset({"caller", "callee", "publisher", "subscriber"})


def router_roles() -> dict[str, Any]:
    return {
        "broker": {"features": dict(BROKER_FEATURES)},
        "dealer": {"features": dict(DEALER_FEATURES)},
    }
