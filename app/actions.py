"""Menus, toolbar and keyboard shortcuts of the main window (and the Help list of them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import qtawesome as qta
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMessageBox

from acseg_core.version import __version__


class ActionHost(Protocol):
    """What the actions trigger: the main window's collaborators and dialog commands."""

    project: Any
    images_dock: Any
    display_dock: Any
    classes_dock: Any
    statistics_dock: Any
    learning_dock: Any
    training_dock: Any
    training: Any
    overlay: Any
    classes_panel: Any
    canvas: Any
    images: Any
    image_list: Any
    editing: Any
    label_all: Any
    learning: Any
    recent_menu: Any
    actions_: Actions

    def ask_open_files(self) -> None: ...
    def ask_open_folder(self) -> None: ...
    def ask_load_model(self) -> None: ...
    def start_training_wizard(self) -> None: ...
    def start_export_dialog(self) -> None: ...
    # QMainWindow's own
    def addAction(self, action: Any) -> None: ...
    def addToolBar(self, title: str) -> Any: ...
    def menuBar(self) -> Any: ...
    def close(self) -> bool: ...


class Actions:
    """The window's QActions by name (``window.actions_.save`` ...)."""

    def __init__(self) -> None:
        self.all: dict[str, QAction] = {}

    def __getattr__(self, name: str) -> QAction:
        try:
            return self.__dict__["all"][name]
        except KeyError:
            raise AttributeError(name) from None


def build_actions(window: ActionHost) -> Actions:
    actions = Actions()

    def make(
        name: str,
        text: str,
        icon: str | None,
        shortcut: QKeySequence | QKeySequence.StandardKey | str | None,
        slot: Callable[..., object],
    ) -> QAction:
        act = QAction(qta.icon(icon) if icon else qta.icon("fa5s.circle"), text, window)
        if shortcut:
            act.setShortcut(QKeySequence(shortcut))
        act.setToolTip(tooltip_with_shortcut(act))  # "Train on a folder (Ctrl+T)"
        act.triggered.connect(lambda _checked=False: slot())
        window.addAction(act)  # shortcuts work even when menus are hidden
        actions.all[name] = act
        return act

    p = window.project
    make("new_project", "&New project", "fa5s.file", QKeySequence.StandardKey.New, p.new)
    make(
        "open_project",
        "&Open project…",
        "fa5s.folder-open",
        QKeySequence.StandardKey.Open,
        p.ask_open,
    )
    make("save", "&Save project", "fa5s.save", QKeySequence.StandardKey.Save, p.save)
    make("save_as", "Save project &as…", "fa5s.file-export", "Ctrl+Shift+S", p.save_as)
    make("open_images", "Add &images…", "fa5s.images", "Ctrl+I", window.ask_open_files)
    make("open_folder", "Add &folder…", "fa5s.folder-plus", "Ctrl+Shift+O", window.ask_open_folder)
    make("export", "&Export labels…", "fa5s.file-download", "Ctrl+E", window.start_export_dialog)
    make("quit", "&Quit", "fa5s.power-off", QKeySequence.StandardKey.Quit, window.close)
    make("train", "&Train on a folder…", "fa5s.brain", "Ctrl+T", window.start_training_wizard)
    make("load_model", "&Load model…", "fa5s.cube", "Ctrl+L", window.ask_load_model)
    make("cancel_training", "&Cancel training", "fa5s.stop", None, window.training.cancel)
    make("toggle_overlay", "Toggle &overlay", "fa5s.layer-group", "O", window.overlay.toggle)
    make(
        "opacity_up",
        "Overlay more opaque",
        None,
        "Shift+O",
        lambda: window.overlay.set_opacity(window.overlay.opacity + 0.1),
    )
    make(
        "opacity_down",
        "Overlay more transparent",
        None,
        "Alt+O",
        lambda: window.overlay.set_opacity(window.overlay.opacity - 0.1),
    )
    make(
        "colour_by_classes",
        "Colour overlay by &classes",
        "fa5s.tags",
        "C",
        lambda: window.overlay.set_mode(
            "classes" if window.overlay.mode == "clusters" else "clusters"
        ),
    )
    make(
        "add_class", "&Add class…", "fa5s.plus", "Ctrl+Shift+N", window.classes_panel.ask_add_class
    )
    make("import_classes", "&Import class list…", "fa5s.file-import", None,
         window.classes_panel.ask_import)  # fmt: skip
    make("fit", "&Fit to window", "fa5s.expand", "F", window.canvas.fit)
    make("actual_size", "Actual &size (1:1)", "fa5s.search", "Ctrl+1", window.canvas.actual_size)
    make(
        "zoom_in",
        "Zoom &in",
        "fa5s.search-plus",
        QKeySequence.StandardKey.ZoomIn,
        lambda: window.canvas.zoom_by(1.25),
    )
    make(
        "zoom_out",
        "Zoom &out",
        "fa5s.search-minus",
        QKeySequence.StandardKey.ZoomOut,
        lambda: window.canvas.zoom_by(0.8),
    )
    make("next_image", "&Next image", "fa5s.arrow-right", "PgDown", lambda: window.images.step(1))
    make(
        "previous_image",
        "&Previous image",
        "fa5s.arrow-left",
        "PgUp",
        lambda: window.images.step(-1),
    )
    e = window.editing
    make("undo", "&Undo", "fa5s.undo", QKeySequence.StandardKey.Undo, e.undo)
    make("redo", "&Redo", "fa5s.redo", "Ctrl+Shift+Z", e.redo)
    tool_group = QActionGroup(window)
    for name, text, icon, key in TOOL_ACTIONS:
        act = make(f"tool_{name}", text, icon, key, lambda n=name: e.set_tool(n))
        act.setCheckable(True)
        act.setChecked(name == e.tool_name)
        tool_group.addAction(act)
    e.tool_changed.connect(lambda n: actions.all[f"tool_{n}"].setChecked(True))
    make("brush_smaller", "Smaller brush", "fa5s.compress-alt", "[", e.shrink_brush)
    make("brush_larger", "Larger brush", "fa5s.expand-alt", "]", e.grow_brush)
    for number in range(1, 10):  # keys 1–9: one help row for all of them (see shortcuts_html)
        pick = QAction(f"Paint class {number}", window)
        pick.setShortcut(QKeySequence(str(number)))
        pick.triggered.connect(lambda _c=False, n=number: e.pick_class(n))
        window.addAction(pick)
    make(
        "label_all",
        "Label &all images",
        "fa5s.magic",
        "Ctrl+Shift+L",
        window.label_all.start,
    )
    make("cancel_label_all", "Cancel labelling", "fa5s.stop-circle", None, window.label_all.cancel)
    learning = window.learning
    make("learn", "Learn from &edits", "fa5s.graduation-cap", "Ctrl+Shift+K", learning.learn)
    live = make("learn_live", "Learn &while painting", "fa5s.sync", None, lambda: None)
    live.setCheckable(True)
    live.toggled.connect(learning.set_live)
    make("forget_strokes", "Back to the &unsupervised model", "fa5s.undo-alt", None,
         learning.forget)  # fmt: skip
    make("undo_learn", "&Undo the last learn", "fa5s.history", "Ctrl+Alt+Z", learning.undo_learn)
    before = make("before_after", "Show the map &before learning", "fa5s.adjust", "Alt+B",
                  lambda: None)  # fmt: skip
    before.setCheckable(True)
    before.toggled.connect(learning.show_before)
    make("shortcuts", "&Keyboard shortcuts", "fa5s.keyboard", "F1", lambda: show_shortcuts(window))
    make("about", "&About acseg", "fa5s.info-circle", None, lambda: show_about(window))

    bar = window.menuBar()
    file_menu = bar.addMenu("&File")
    file_menu.addActions([actions.new_project, actions.open_project])
    window.recent_menu = file_menu.addMenu(qta.icon("fa5s.history"), "Open &recent")
    file_menu.addActions([actions.save, actions.save_as])
    file_menu.addSeparator()
    file_menu.addActions([actions.open_images, actions.open_folder])
    file_menu.addSeparator()
    file_menu.addAction(actions.export)
    file_menu.addSeparator()
    file_menu.addAction(actions.quit)
    model_menu = bar.addMenu("&Model")
    model_menu.addActions([actions.train, actions.load_model, actions.cancel_training])
    model_menu.addSeparator()
    model_menu.addActions([actions.label_all, actions.cancel_label_all])
    model_menu.addSeparator()
    model_menu.addActions([actions.learn, actions.learn_live, actions.forget_strokes])
    model_menu.addActions([actions.undo_learn, actions.before_after])
    edit_menu = bar.addMenu("&Edit")
    edit_menu.addActions([actions.undo, actions.redo])
    edit_menu.addSeparator()
    edit_menu.addActions([actions.all[f"tool_{name}"] for name, *_ in TOOL_ACTIONS])
    edit_menu.addSeparator()
    edit_menu.addActions([actions.brush_smaller, actions.brush_larger])
    classes_menu = bar.addMenu("&Classes")
    classes_menu.addActions([actions.add_class, actions.import_classes])
    classes_menu.addActions([actions.colour_by_classes])
    view_menu = bar.addMenu("&View")
    view_menu.addActions([actions.toggle_overlay, actions.opacity_up, actions.opacity_down])
    view_menu.addSeparator()
    view_menu.addActions([actions.fit, actions.actual_size, actions.zoom_in, actions.zoom_out])
    view_menu.addSeparator()
    view_menu.addActions([actions.next_image, actions.previous_image])
    view_menu.addSeparator()
    for dock in (
        window.images_dock,
        window.display_dock,
        window.classes_dock,
        window.statistics_dock,
        window.learning_dock,
        window.training_dock,
    ):
        view_menu.addAction(dock.toggleViewAction())
    help_menu = bar.addMenu("&Help")
    help_menu.addActions([actions.shortcuts, actions.about])

    toolbar = window.addToolBar("Main")
    toolbar.setObjectName("main_toolbar")
    toolbar.addActions([actions.open_project, actions.save, actions.open_folder])
    toolbar.addSeparator()
    toolbar.addActions([actions.train, actions.load_model])
    toolbar.addSeparator()
    toolbar.addActions([actions.toggle_overlay, actions.fit, actions.actual_size])
    toolbar.addSeparator()
    toolbar.addActions([actions.undo, actions.redo])
    toolbar.addSeparator()
    toolbar.addActions([actions.label_all, actions.export])
    actions.cancel_training.setEnabled(False)
    actions.cancel_label_all.setEnabled(False)
    window.label_all.running_changed.connect(actions.cancel_label_all.setEnabled)
    window.label_all.running_changed.connect(lambda r: actions.label_all.setEnabled(not r))
    window.learning.running_changed.connect(lambda r: actions.learn.setEnabled(not r))

    def learning_state() -> None:
        learnt = window.learning.learnt is not None
        actions.undo_learn.setEnabled(window.learning.history.can_undo)
        actions.before_after.setEnabled(learnt)
        actions.before_after.blockSignals(True)
        actions.before_after.setChecked(window.learning.before)
        actions.before_after.blockSignals(False)

    window.learning.state_changed.connect(learning_state)
    learning_state()
    actions.undo.setEnabled(False)
    actions.redo.setEnabled(False)

    def undo_state() -> None:
        actions.undo.setEnabled(e.can_undo)
        actions.redo.setEnabled(e.can_redo)

    e.undo_changed.connect(undo_state)
    window.training.state_changed.connect(
        lambda s: actions.cancel_training.setEnabled(s == "running")
    )
    window.training.state_changed.connect(lambda _s: training_state())

    def training_state() -> None:
        """One run at a time: Train is off while one runs (the panel shows it)."""
        running = window.training.running
        actions.train.setEnabled(not running)
        actions.train.setToolTip(
            "Training is running: see the Training panel (Cancel there)"
            if running
            else tooltip_with_shortcut(actions.train)
        )

    window.project.recent_changed.connect(
        lambda: window.project.fill_recent_menu(window.recent_menu)
    )
    window.project.fill_recent_menu(window.recent_menu)
    return actions


TOOL_ACTIONS = (  # (tool, menu text, icon, key)
    ("pan", "&Pan tool", "fa5s.hand-paper", "H"),
    ("brush", "&Brush", "fa5s.paint-brush", "B"),
    ("eraser", "&Eraser (back to the clusters)", "fa5s.eraser", "E"),
    ("fill", "&Fill region", "fa5s.fill-drip", "G"),
    ("polygon", "P&olygon fill", "fa5s.draw-polygon", "P"),
    ("name", "&Name the clicked cluster", "fa5s.tag", "N"),
)

EXTRA_SHORTCUTS = (  # gestures and key groups that are not single actions
    ("Paint with class 1–9 of the list", "1 … 9"),
    ("Zoom at the cursor", "mouse wheel"),
    ("Pan", "drag (pan tool), middle drag, or Space + drag"),
    ("Close the polygon", "double-click or Enter"),
    ("Drop the polygon / last vertex", "Esc / Backspace"),
)


def tooltip_with_shortcut(action: QAction) -> str:
    """The action's name and its key, as a tooltip: "Train on a folder (Ctrl+T)"."""
    name = action.text().replace("&", "").rstrip("…")
    key = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
    return f"{name} ({key})" if key else name


def shortcut_rows(actions: Actions) -> list[tuple[str, str]]:
    """(action, key) for every action with a shortcut, in menu order."""
    rows = []
    for act in actions.all.values():
        key = act.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        if key:
            rows.append((act.text().replace("&", "").rstrip("…"), key))
    return rows


def shortcuts_html(actions: Actions) -> str:
    rows = "".join(
        f"<tr><td>{name}</td><td style='padding-left:16px'><b>{key}</b></td></tr>"
        for name, key in shortcut_rows(actions)
    )
    extra = "".join(
        f"<tr><td>{name}</td><td style='padding-left:16px'><b>{key}</b></td></tr>"
        for name, key in EXTRA_SHORTCUTS
    )
    return f"<table>{rows}{extra}</table>"


def show_shortcuts(window: Any) -> None:
    QMessageBox.information(window, "Keyboard shortcuts", shortcuts_html(window.actions_))


def show_about(window: Any) -> None:
    QMessageBox.about(
        window,
        "About acseg",
        f"<b>acseg {__version__}</b><br>Labelling assistant built on Autoregressive "
        "Clustering (Ouali et al., ECCV 2020) with the IIC loss.",
    )
