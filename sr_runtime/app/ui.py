"""The Gradio page: pick a time and a region, run inference, look at the maps, download COGs.

Everything the page shows comes from :mod:`sr_runtime.results` (cached results) and
:mod:`sr_runtime.products` (the files); this module only lays out the page and turns
:class:`~sr_runtime.errors.SrEdgeError` into the one-line message Gradio shows in the page.
Nothing is fetched from outside at run time: system fonts, no analytics, no share link.
"""

import logging
from collections.abc import Callable
from typing import Any

import gradio as gr

from sr_runtime.app.maps import figure_for
from sr_runtime.app.workbench import WHOLE_GRID, Choice, Workbench, time_label
from sr_runtime.errors import SrEdgeError
from sr_runtime.products import Kind, write_product
from sr_runtime.results import Result, Results

log = logging.getLogger("sr_edge.app")
TITLE = "sr-edge: km-scale super-resolution of DestinE Climate DT fields"
THEME_FONTS = (["ui-sans-serif", "system-ui", "sans-serif"], ["ui-monospace", "monospace"])
PRODUCT_LABELS: dict[Kind, str] = {"sr": "Super-resolution COG (float32 data)",
                                   "lr": "Low-resolution COG (float32 data)",
                                   "rgb": "Colour-mapped COG (RGBA, overviews)"}


def _friendly(action: str, call: Callable[[], Any]) -> Any:
    """Run ``call``; any failure becomes one line in the page (never a stack trace)."""
    try:
        return call()
    except gr.Error:
        raise
    except SrEdgeError as exc:
        log.info("%s refused: %s", action, exc)
        raise gr.Error(str(exc), title=f"{action} failed", print_exception=False) from None
    except Exception as exc:  # noqa: BLE001 - unforeseen: say what kind, log one line
        log.error("%s failed (%s): %s", action, type(exc).__name__, exc)
        raise gr.Error(f"{action} failed ({type(exc).__name__}); the server log has one line "
                       "about it", title=f"{action} failed", print_exception=False) from None


def _info(result: Result, results: Results, cached: bool) -> str:
    units = result.key.units
    rows = [("variable", f"{result.key.variable} (of {', '.join(results.variables)})"),
            ("backend", f"{result.backend} ({result.precision})"),
            ("model", f"{results.model.path.name} (sha256 {results.model_sha256[:12]})"),
            ("inference time", f"{result.infer_seconds * 1000:.0f} ms"
             + (" (served from the cache)" if cached else "")),
            ("grid", f"LR {result.lr.shape[0]} x {result.lr.shape[1]} -> SR "
             f"{result.sr.shape[0]} x {result.sr.shape[1]}"),
            ("source", results.source.label)]
    if result.scores is not None:
        s = result.scores
        rows += [("RMSE vs HR truth", f"{s.rmse:.3f} {units}"),
                 ("PSNR", f"{s.psnr:.2f} dB (data range {s.data_range:.2f} {units})"),
                 ("SSIM", f"{s.ssim:.4f}")]
    else:
        rows.append(("scores", "no HR truth at this time and region"))
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    return f"**{time_label(result.key.time)}**\n\n| | |\n|---|---|\n{table}"


def build_app(workbench: Workbench) -> gr.Blocks:
    """The page, over ``workbench`` (its default choice is opened to fill the pickers)."""
    from sr_runtime.engines.registry import backend_names

    start = workbench.results()
    first = workbench.first_time(start)
    default = workbench.default

    def choice(source: str, model: str, backend: str) -> Choice:
        same = source == default.source
        return Choice(source.strip() or "sample", model.strip() or None, backend,
                      default.config, default.truth if same else None, default.edh_url,
                      default.static if same else None)

    def result_for(date: str, hour: str, preset: str, bbox: str, units: str, variable: str,
                   source: str, model: str, backend: str) -> tuple[Result, Results, bool]:
        if not hour:
            raise gr.Error("pick a date and a time first", title="no time",
                           print_exception=False)
        results = workbench.results(choice(source, model, backend))
        key = results.resolve(hour, workbench.region(preset, bbox), units, variable or None)
        result, cached = results.get(key)
        return result, results, cached

    with gr.Blocks(title="sr-edge", analytics_enabled=False,
                   delete_cache=(900, 3600)) as demo:
        gr.Markdown(f"## {TITLE}\nPick a valid time of the DataCube and a region, then "
                    "**Run inference**: LR input | super-resolved | HR truth (when the cube has "
                    "it) on one colour scale. The buttons below write the files for GIS, web "
                    "maps and story tools.")
        with gr.Row():
            with gr.Column(scale=1, min_width=280):
                date = gr.Dropdown(workbench.dates(start), value=first[:10], label="Date",
                                   elem_id="date")
                hour = gr.Dropdown(workbench.hours(start, first[:10]), value=first,
                                   label="Time (only the cube's steps)", elem_id="hour")
                preset = gr.Dropdown(workbench.presets(start), value=WHOLE_GRID,
                                     label="Region", elem_id="preset")
                bbox = gr.Textbox("", label="or a box W,S,E,N (degrees)",
                                  placeholder=str(start.grid_box()), elem_id="bbox")
                units = gr.Radio(["K", "degC"], value="K", label="Units", elem_id="units")
                variable = gr.Dropdown(list(start.variables), value=start.variable.name,
                                       label="Variable (of the model's)", elem_id="variable")
                with gr.Accordion("Source, model, backend (as sr-run)", open=False):
                    source = gr.Textbox(default.source, label="--source",
                                        info="sample, edh[:MODEL/EXP/VARIANT], Zarr path or URL",
                                        elem_id="source")
                    model = gr.Textbox(default.model or "", label="--model",
                                       placeholder="the embedded default model",
                                       elem_id="model")
                    backend = gr.Dropdown(backend_names(), value=default.backend,
                                          label="--backend", elem_id="backend")
                    open_button = gr.Button("Open", elem_id="open")
                    notes = gr.Markdown("\n".join(f"- {n}" for n in start.model.notes))
                run = gr.Button("Run inference", variant="primary", elem_id="run")
            with gr.Column(scale=3):
                maps = gr.Plot(label="Maps", format="png", elem_id="maps")
                info = gr.Markdown("", elem_id="info")
        with gr.Row():
            buttons = {kind: gr.Button(f"Generate {label}", elem_id=f"make-{kind}")
                       for kind, label in PRODUCT_LABELS.items()}
        with gr.Row():
            files = {kind: gr.File(label=label, interactive=False, elem_id=f"file-{kind}")
                     for kind, label in PRODUCT_LABELS.items()}

        request_inputs = [date, hour, preset, bbox, units, variable, source, model, backend]

        def pick_date(day: str, source_text: str, model_text: str, backend_name: str):
            def update():
                results = workbench.results(choice(source_text, model_text, backend_name))
                hours = workbench.hours(results, day)
                return gr.Dropdown(choices=hours, value=hours[0][1] if hours else None)
            return _friendly("listing the times", update)

        def open_choice(source_text: str, model_text: str, backend_name: str):
            def update():
                results = workbench.results(choice(source_text, model_text, backend_name))
                when = workbench.first_time(results)
                return (gr.Dropdown(choices=workbench.dates(results), value=when[:10]),
                        gr.Dropdown(choices=workbench.hours(results, when[:10]), value=when),
                        gr.Dropdown(choices=workbench.presets(results), value=WHOLE_GRID),
                        gr.Dropdown(choices=list(results.variables),
                                    value=results.variable.name),
                        "\n".join(f"- {n}" for n in results.model.notes))
            return _friendly("opening the source and model", update)

        def run_inference(*values: str):
            def compute():
                result, results, cached = result_for(*values)
                return figure_for(result, time_label(result.key.time)), _info(
                    result, results, cached)
            return _friendly("inference", compute)

        def make_file(kind: Kind) -> Callable[..., str]:
            def handler(date_v: str, hour_v: str, preset_v: str, bbox_v: str, units_v: str,
                        variable_v: str, source_v: str, model_v: str, backend_v: str,
                        request: gr.Request) -> str:
                def write() -> str:
                    result, results, _ = result_for(date_v, hour_v, preset_v, bbox_v, units_v,
                                                    variable_v, source_v, model_v, backend_v)
                    folder = workbench.session_folder(getattr(request, "session_hash", "")
                                                      or "anonymous")
                    return str(write_product(result, kind, folder, results.source.label))
                return _friendly(f"writing the {kind.upper()} COG", write)
            return handler

        def end_session(request: gr.Request) -> None:
            workbench.end_session(getattr(request, "session_hash", "") or "anonymous")

        date.change(pick_date, [date, source, model, backend], hour)
        open_button.click(open_choice, [source, model, backend],
                          [date, hour, preset, variable, notes])
        run.click(run_inference, request_inputs, [maps, info], concurrency_limit=4)
        for kind, button in buttons.items():
            button.click(make_file(kind), request_inputs, files[kind], concurrency_limit=4)
        demo.unload(end_session)
    return demo


def launch(demo: gr.Blocks, host: str, port: int, *, block: bool = True) -> None:
    """Serve the page on ``host:port`` with nothing fetched from outside."""
    font, mono = THEME_FONTS
    theme = gr.themes.Default(font=font, font_mono=mono)
    demo.queue(default_concurrency_limit=4)
    demo.launch(server_name=host, server_port=port, share=False, inbrowser=False,
                show_error=False, theme=theme, ssr_mode=False, mcp_server=False,
                footer_links=[], prevent_thread_lock=not block, quiet=False)
