"""Programs that run on the cluster's nodes (drain, rebalance, capacity metric, Consul snapshots).

Standard library only: they run in the stock `python:3.12-alpine` image (node_agents.image) from files
user-data writes under /opt/swarm-cluster/agents, and on the venv's Python 3.11 in the tests.
"""
