#!/usr/bin/env python3
"""One run of bench/quality.py, in its own process: the Job, its wall time, and its images at checkpoints.

    .venv/bin/python bench/quality_run.py FOLDER     # FOLDER/spec.json says what to run

The run goes through ``stylize.Job`` exactly as ``stylize run`` drives it
(an output file, checkpoints every 10 iterations, the thread pools of
``stylize.core.run.threads``), so its wall time is what a user waits for:
from before the Job is made (reading the images, loading the network,
the targets) to the output written. Along the way the image is kept as
PNG at each level's last iteration and every ``every`` iterations of the
last level; the time that costs (computing the image, encoding, writing)
is measured and taken off every later time, so keeping images does not
slow the figures. Every Step's time and objective are recorded too.
``FOLDER/run.json`` is written last, atomically: a run without it did not
finish and is run again.
"""
from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

from speed import peak_rss_bytes


def cpu_seconds() -> float:
    """User + system CPU seconds of this process, all its threads: what a run costs whatever else the machine
    runs (``quality.py --clock cpu``; with --threads 1 it is close to the run's wall time on an idle core)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def checkpoints(levels, every: int) -> set[int]:
    """Steps whose image is kept: each level's last, and every ``every`` of the last level."""
    last = levels[-1]
    kept = {level.last_step for level in levels if level.iterations}
    kept.update(range(last.first_step + every, last.last_step + 1, every))
    return kept


def main(folder: Path) -> None:
    from stylize import Job, events
    from stylize.core.io.files import atomic_write
    from stylize.core.io.images import save_image

    spec = json.loads((folder / "spec.json").read_text())
    key = spec["key"]
    settings = dict(key["settings"], length=key["length"], threads=key["threads"])
    load_before = os.getloadavg()
    start, cpu_start = time.perf_counter(), cpu_seconds()
    job = Job(spec["content"], spec["style"], output=folder / "final.png", level_iterations=key["levels"],
              **settings)
    kept_steps = checkpoints(job.plan.levels, key["every"])
    saving = cpu_saving = 0.0  # seconds (wall, CPU) spent keeping images, taken off every later time
    steps, kept, level_starts, final, expected = [], [], [], {}, {}

    def now() -> float:
        return time.perf_counter() - start - saving

    def cpu() -> float:
        return cpu_seconds() - cpu_start - cpu_saving

    def on_event(event) -> None:
        nonlocal saving, cpu_saving
        if isinstance(event, events.Started):  # what the user is told at the start: the ETA check
            expected.update(t=now(), seconds=event.estimate.seconds if event.estimate else None)
        elif isinstance(event, events.LevelStarted):
            level_starts.append({"level": event.level.index, "length": event.level.length, "t": now()})
            print(f"   level {event.level.index + 1}/{event.levels}: {event.level.length} px, "
                  f"{event.level.iterations} iterations (t = {now():.0f} s)", flush=True)
        elif isinstance(event, events.Step):
            t, c = now(), cpu()
            steps.append({"step": event.step, "level": event.level, "t": t, "cpu": c, "loss": event.loss,
                          "eta": event.eta})
            last = event.step == job.plan.iterations
            if (event.step in kept_steps or event.converged) and not last:  # the last is final.png
                begin, cpu_begin = time.perf_counter(), cpu_seconds()
                path = save_image(event.result.image, folder / f"step-{event.step:04d}.png")
                saving += time.perf_counter() - begin
                cpu_saving += cpu_seconds() - cpu_begin
                kept.append({"step": event.step, "level": event.level, "t": t, "cpu": c, "image": path.name})
        elif isinstance(event, events.Finished):
            final.update(t=now(), cpu=cpu(), step=steps[-1]["step"] if steps else 0)

    job.run(on_event)
    kept.append({"step": final["step"], "level": len(job.plan.levels) - 1, "t": final["t"], "cpu": final["cpu"],
                 "image": "final.png",
                 "final": True})
    record = {**spec, "finished": True, "seconds": final["t"], "cpu_seconds": final["cpu"],
              "saving_seconds": saving,
              "levels": [{"length": level.length, "shape": list(level.shape), "iterations": level.iterations,
                          "first_step": level.first_step} for level in job.plan.levels],
              "expected": expected, "level_starts": level_starts, "checkpoints": kept, "steps": steps,
              "peak_rss_bytes": peak_rss_bytes(), "load": [load_before, os.getloadavg()]}
    with atomic_write(folder / "run.json") as f:
        f.write(json.dumps(record, indent=1).encode())
    print(f"   finished: {final['t']:.1f} s ({saving:.1f} s of keeping images taken off), "
          f"{len(kept)} images kept", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
