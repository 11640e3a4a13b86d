"""Workers, the Profiler and the Optimizer change code, each on its own branch."""

from godel.intents.schema import Role

from .base import agent_task

worker = agent_task(Role.worker)
profiler = agent_task(Role.profiler)
optimizer = agent_task(Role.optimizer)
