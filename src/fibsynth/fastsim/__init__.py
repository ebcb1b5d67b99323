"""Fast physics path: Hunger-Kuechler, the eta(E, Z, depth) network and the shine-through projection."""
