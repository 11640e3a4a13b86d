"""The Coordinator plans the job and splits it into subtasks."""

from godel.intents.schema import Role

from .base import agent_task

coordinator = agent_task(Role.coordinator)
