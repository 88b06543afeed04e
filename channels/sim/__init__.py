"""Channel simulators: real HTTP servers that behave like a wallet or a bank gateway."""

from channels.sim.profile import PROFILES, Latency, SimFaults, SimKind, SimProfile, profile_named
from channels.sim.server import RunningSimulator, build_app, run_simulator, start_simulator

__all__ = [
    "PROFILES",
    "Latency",
    "RunningSimulator",
    "SimFaults",
    "SimKind",
    "SimProfile",
    "build_app",
    "profile_named",
    "run_simulator",
    "start_simulator",
]
