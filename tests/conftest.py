"""Test-wide settings: property tests have no per-example deadline (the machine is shared
and timing is not what they test)."""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "cleanroom", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("cleanroom")
