def geometrical_misalignment(*a): pass
def mase(*a): pass
def temporal_misalignment(*a): pass
