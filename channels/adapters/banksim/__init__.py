"""The bank-style channel (Alipay/UnionPay gateway shape), the other side of `channels.sim.bank`."""

from channels.adapters.banksim.payments import ADAPTER, BankSimChannel

__all__ = ["ADAPTER", "BankSimChannel"]
