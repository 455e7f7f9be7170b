"""The reconcile loop: phases that fetch, render, plan, apply, prune and report."""
