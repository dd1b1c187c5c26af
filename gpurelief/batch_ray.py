"""`--engine ray`: the same per-image job through Ray Data (optional extra gpurelief[ray]; the core never imports this).

    items (driver, manifest-filtered) -> from_items
      -> map(decode_row)                    CPU tasks: read bytes (local path or fsspec URL), decode
      -> map_batches(ReliefActor, ...)      actor pool: setup() once per actor (model load), num_gpus=1
                                            per actor when the cluster has GPUs; depth, mesh, write outputs
      -> small JSON result rows back to the driver, which writes the manifest and report.

A failing image becomes an error row inside the stages (never an exception that fails the job).
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, fields, replace

import numpy as np

from .batch import BatchItem, JobSpec, ReliefJob, check_item, error_row
from .errors import GpureliefError, require
from .pipeline import StageTimer
from .types import Image


def _item_from_row(row: dict) -> BatchItem:
    return BatchItem(**{f.name: row[f.name] for f in fields(BatchItem) if f.name in row})


def _cuda_really_available() -> bool:
    """Ray's GPU ids are a scheduling promise; only the CUDA runtime says whether a device is there."""
    try:
        import cupy

        return bool(cupy.cuda.is_available())
    except Exception:  # noqa: BLE001 - no CuPy, no driver
        return False


def decode_row(row: dict, *, spec: JobSpec) -> dict:
    """CPU task: row (an item) -> row with the decoded image, or with an error row (JSON) and no pixels."""
    return _Decoder(spec)(row)


class _Decoder:
    def __init__(self, spec: JobSpec):
        self.job = ReliefJob(spec)

    def __call__(self, row: dict) -> dict:
        item = _item_from_row(row)
        timer, t0 = StageTimer(), time.perf_counter()
        out = {"item": json.dumps(asdict(item)), "error": "", "t0_offset": 0.0}
        try:
            check_item(item)
            image = self.job.decode(item, timer)
        except Exception as exc:  # noqa: BLE001 - a bad file fails alone
            out.update(error=json.dumps(error_row(item, timer, t0, exc)), pixels=np.zeros((0, 0, 3), np.uint8),
                       source_bytes=b"", source_format="", source_mode="", raw_orientation=1, path="",
                       timings=json.dumps(timer.timings))
            return out
        out.update(
            pixels=image.pixels, source_bytes=image.source_bytes or b"", source_format=image.source_format or "",
            source_mode=image.source_mode or "", raw_orientation=int(image.raw_orientation),
            path=str(image.path) if image.path is not None else "", timings=json.dumps(timer.timings),
            t0_offset=time.perf_counter() - t0,
        )
        return out


class ReliefActor:
    """Actor: the job set up once (model/engine load), then depth + mesh + write per row -> JSON result rows."""

    def __init__(self, spec: JobSpec):
        import ray

        self.device = "cuda" if _cuda_really_available() else "cpu"
        if getattr(spec.options, "device", None) in ("auto", None) and hasattr(spec.options, "device"):
            spec = replace(spec, options=replace(spec.options, device=self.device))
        self.gpu_ids = [str(g) for g in ray.get_gpu_ids()]
        self.job = ReliefJob(spec)
        self.job.setup()

    def __call__(self, batch: dict) -> dict:
        from pathlib import Path

        rows = []
        for i in range(len(batch["item"])):
            item = _item_from_row(json.loads(batch["item"][i]))
            timer = StageTimer()
            timer.timings.update(json.loads(batch["timings"][i]))
            t0 = time.perf_counter() - float(batch["t0_offset"][i])
            if batch["error"][i]:
                row = json.loads(batch["error"][i])
            else:
                try:
                    path = str(batch["path"][i])
                    image = Image(
                        pixels=np.ascontiguousarray(batch["pixels"][i]), path=Path(path) if path else None,
                        source_bytes=bytes(batch["source_bytes"][i]) or None,
                        source_format=str(batch["source_format"][i]) or None,
                        source_mode=str(batch["source_mode"][i]) or None,
                        raw_orientation=int(batch["raw_orientation"][i]),
                    )
                    row = self.job.finish(item, image, self.job.compute(image, timer), timer, t0)
                except Exception as exc:  # noqa: BLE001 - a bad file fails alone
                    row = error_row(item, timer, t0, exc)
            row["worker"] = {"engine": "ray", "device": self.device, "gpu_ids": self.gpu_ids}
            rows.append(json.dumps(row))
        return {"row": np.array(rows, dtype=object)}


class RayEngine:
    """Runs items on a Ray cluster (`address`, or a local one started and stopped here); yields result rows."""

    name = "ray"

    def __init__(self, spec: JobSpec, *, address: str | None = None, workers: int = 0, batch_size: int = 1):
        self.spec = spec
        self.address = address
        self.workers = workers
        self.batch_size = max(1, batch_size)
        self.stop = threading.Event()

    def request_stop(self) -> None:
        self.stop.set()

    def run(self, items: list[BatchItem]):
        ray = require("ray", "ray", purpose="--engine ray")
        require("ray.data", "ray", purpose="--engine ray")
        if not items:
            return
        started = False
        if not ray.is_initialized():
            import logging

            ray.init(address=self.address, log_to_driver=False, include_dashboard=False, logging_level=logging.WARNING)
            logging.getLogger("ray.data").setLevel(logging.WARNING)
            started = True
        try:
            yield from self._run(ray, items)
        finally:
            if started:
                ray.shutdown()

    def _run(self, ray, items: list[BatchItem]):
        from ray.data import ActorPoolStrategy, DataContext

        ctx = DataContext.get_current()
        ctx.max_errored_blocks = -1  # errors are rows already; a lost block must not fail the whole job
        ctx.enable_progress_bars = False
        res = ray.cluster_resources()
        cpus, gpus = float(res.get("CPU", 1)), int(res.get("GPU", 0))
        # Ray counts resources logically: actors holding every CPU leave the decode tasks none, and the job
        # waits forever. So the decode stage gets its share first and the actors split the rest.
        decode_cpus = 1.0 if cpus >= 4 else 0.5
        budget = max(0.25, cpus - decode_cpus)
        if gpus:
            pool = min(self.workers or gpus, gpus)  # one GPU per actor; more would never be scheduled
            actor_res = {"num_gpus": 1, "num_cpus": min(1.0, budget / pool)}
        else:
            pool = self.workers or max(1, int(budget))
            actor_res = {"num_cpus": min(1.0, budget / pool)}
        self.workers = pool
        ds = ray.data.from_items([asdict(it) for it in items])
        ds = ds.map(decode_row, fn_kwargs={"spec": self.spec}, num_cpus=decode_cpus)
        ds = ds.map_batches(
            ReliefActor, fn_constructor_args=(self.spec,), batch_size=self.batch_size, batch_format="numpy",
            compute=ActorPoolStrategy(min_size=1, max_size=pool), **actor_res,
        )
        seen: set[int] = set()
        for batch in ds.iter_batches(batch_size=1, batch_format="numpy", prefetch_batches=0):
            for text in batch["row"]:
                row = json.loads(text)
                seen.add(row["index"])
                yield row
            if self.stop.is_set():
                break
        if not self.stop.is_set():
            for it in items:  # rows of a block Ray dropped (an actor that kept dying)
                if it.index not in seen:
                    yield error_row(it, StageTimer(), time.perf_counter(), GpureliefError(
                        f"{it.src}: lost by the Ray job (a worker died repeatedly); rerun with --resume"))
