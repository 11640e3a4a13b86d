"""Reviewers run the repository's checks on the merged work and give a verdict."""

from godel.intents.schema import Role

from .base import agent_task

reviewer = agent_task(Role.reviewer)
security_reviewer = agent_task(Role.security_reviewer)
