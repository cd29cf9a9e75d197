"""The run plan, made once: each level's size, evaluation, optimizer, memory and time."""
