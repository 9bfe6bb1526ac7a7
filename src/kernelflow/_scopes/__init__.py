"""Time and cancellation: a run's ``Scope`` (deadline and cancel, nested), the timer thread,
and stopping a body in its own thread at a deadline. Below the engine and the futures,
which both wait within scopes.
"""
