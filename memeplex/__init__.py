"""memeplex: the library under the scripts (training loop pieces, environments, evaluation protocol,
checkpoints, competitive play, statistics, reports). Scripts at the top level import it; it imports
no script (method_i.py, the algorithm module, is the one exception it may load)."""
