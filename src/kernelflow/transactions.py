"""Transactions: task runs that commit together or roll back together.

``kernelflow.transaction`` is the context manager; this module also has what task bodies
and hooks use, under Prefect's names too (``prefect.transactions.get_transaction``)::

    from kernelflow.transactions import get_transaction

    @task
    def write(path):
        ...
        get_transaction().set("path", path)   # the run's own transaction

    @write.on_rollback
    def remove(txn):
        os.remove(txn.get("path"))

See ``kernelflow._transactions`` for how runs, hooks and nesting behave, and
``kernelflow._transaction`` for the object (Prefect's ``Transaction`` API).
"""

from kernelflow._transaction import (
    BaseTransaction,
    CommitMode,
    IsolationLevel,
    TransactionHookWarning,
    TransactionState,
)
from kernelflow._transaction_forms import AsyncTransaction, Transaction
from kernelflow._transactions import atransaction, current_transaction, transaction

get_transaction = current_transaction  # Prefect's name for it

__all__ = [
    "AsyncTransaction",
    "BaseTransaction",
    "CommitMode",
    "IsolationLevel",
    "Transaction",
    "TransactionHookWarning",
    "TransactionState",
    "atransaction",
    "current_transaction",
    "get_transaction",
    "transaction",
]
