"""The operations platform: the database, operations, the job queue, workers and the agent."""
