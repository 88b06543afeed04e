"""The wallet-style channel (WeChat Pay v3 shape), the other side of `channels.sim.wx`."""

from channels.adapters.wxsim.payments import ADAPTER, WxSimChannel

__all__ = ["ADAPTER", "WxSimChannel"]
