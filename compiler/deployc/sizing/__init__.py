"""``deployc size``: the cheapest GPU type and count that serve a spec's traffic within its SLO.

``space`` says what is searched, ``search`` plans each candidate with the planner, ``deployment``
reduces a plan to the figures compared, ``frontier`` draws the Pareto chart, ``report`` prints,
``write`` writes the chosen deployment as a new spec, ``run`` ties them together.
"""
