"""The serving simulation: how an engine's scheduler serves the workload, step by step.

``lengths`` draws request lengths, ``traffic`` the arrivals, ``stepcost`` prices one engine step
with the performance model, ``engine`` runs one replica's scheduler, ``metrics`` summarises, and
``simulate`` ties them together for a pool (DP replicas, saturation capacity, SLO verdict).
"""
