"""The roles and features the router announces in WELCOME.Details.roles.

Only what is implemented and tested is announced; a feature is added here in
the same change that makes it work.
"""

from __future__ import annotations

from typing import Any

BROKER_FEATURES: dict[str, bool] = {
    "publisher_exclusion": True,
    "subscriber_blackwhite_listing": True,
    "publisher_identification": True,
    "pattern_based_subscription": True,
    "event_retention": True,
    "session_meta_api": True,
    "subscription_meta_api": True,
}
DEALER_FEATURES: dict[str, bool] = {
    "progressive_call_results": True,
    "progressive_call_invocations": True,
    "call_timeout": True,
    "call_canceling": True,
    "caller_identification": True,
    "pattern_based_registration": True,
    "shared_registration": True,
    "registration_revocation": True,
    "call_reroute": True,
    "registration_meta_api": True,
    "session_meta_api": True,
    "testament_meta_api": True,
}

CLIENT_ROLES = frozenset({"caller", "callee", "publisher", "subscriber"})


def router_roles() -> dict[str, Any]:
    return {
        "broker": {"features": dict(BROKER_FEATURES)},
        "dealer": {"features": dict(DEALER_FEATURES)},
    }
