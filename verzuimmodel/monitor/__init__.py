"""The quarterly thuiszitters monitor: stock and flow of long-term absence by quarter and region."""

from .stock import CASE_TYPES, MonitorTables, monitored_episodes, quarterly, running_durations, tables

__all__ = ["CASE_TYPES", "MonitorTables", "monitored_episodes", "quarterly", "running_durations", "tables"]
