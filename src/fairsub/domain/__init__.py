"""The pure core of fairsub: plain classes and functions, standard library only."""
