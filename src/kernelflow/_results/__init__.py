"""Result caching machinery: keys, policies, task-source hashing, serializers, disk store.

Nothing here knows about runs or states: the engine (``_engine/caching.py``) asks this
package for a key, a stored value, or a place to put one.
"""
