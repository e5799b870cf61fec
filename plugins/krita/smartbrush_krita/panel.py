"""The docker's widgets (object names are what the GUI tests look for), its preview image and the
auto precision it shows for the active selection."""

from __future__ import annotations

from krita import Krita
from PyQt5.QtCore import Qt
from PyQt5.QtGui import QImage, QPixmap
from PyQt5.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from smartbrush.wire import protocol
from smartbrush.wire.client import resolve_endpoint
from smartbrush.wire.editing import DETAIL_LABELS, describe_precision

from .krita_adapter import selection_box, selection_precision

PREVIEW_SIDE = 128


def build(docker) -> None:
    """Create the docker's widgets as attributes of `docker` and connect them to its slots."""
    root = QWidget()
    layout = QVBoxLayout(root)
    layout.setContentsMargins(
        2, 2, 2, 2
    )  # with a scroll bar beside it, it still fits a narrow column
    form = QFormLayout()
    docker.prompt = QLineEdit(objectName="smartbrush_prompt")
    docker.prompt.setPlaceholderText("what to paint, e.g. a red ball")
    docker.prompt.returnPressed.connect(docker.start_fill)
    docker.negative = QLineEdit(objectName="smartbrush_negative_prompt")
    docker.negative.setPlaceholderText("what to avoid (optional)")
    form.addRow("Prompt", docker.prompt)
    form.addRow("Negative", docker.negative)

    docker.auto_precision = QCheckBox("Auto", objectName="smartbrush_precision_auto")
    docker.auto_precision.setToolTip(
        "Rectangle selection: anywhere in the box; other shapes: this shape (looser when feathered)"
    )
    docker.precision = QSlider(Qt.Horizontal, objectName="smartbrush_precision")
    docker.precision.setRange(0, 100)
    docker.precision.setToolTip("0 = exactly the selection's shape ... 1 = anywhere in its box")
    docker.precision_value = QLabel(objectName="smartbrush_precision_value")
    # "auto: 1.00, a rectangle: anywhere in the box" wraps instead of widening the dock column
    docker.precision_value.setWordWrap(True)
    docker.precision_value.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
    docker.precision.valueChanged.connect(lambda *_: update_precision_label(docker))
    docker.auto_precision.toggled.connect(lambda *_: update_precision_label(docker))
    row = QHBoxLayout()
    row.addWidget(docker.auto_precision)
    row.addWidget(docker.precision_value, 1)
    form.addRow("Precision", row)
    row = QHBoxLayout()
    row.addWidget(QLabel("shape"))
    row.addWidget(docker.precision, 1)
    row.addWidget(QLabel("box"))
    form.addRow("", row)

    layout.addLayout(form)
    # the settings one seldom changes, folded away so the docker leaves room for the Layers docker
    toggle = QToolButton(objectName="smartbrush_more", text="More settings", checkable=True)
    toggle.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
    toggle.setArrowType(Qt.RightArrow)
    toggle.setAutoRaise(True)
    layout.addWidget(toggle)
    docker.more = QWidget(objectName="smartbrush_more_settings")
    more = QVBoxLayout(docker.more)
    more.setContentsMargins(0, 0, 0, 0)
    form = QFormLayout()
    more.addLayout(form)
    docker.steps = spin_box("steps", objectName="smartbrush_steps")
    form.addRow("Steps", docker.steps)
    docker.random_seed = QCheckBox("Random", objectName="smartbrush_random_seed")
    docker.seed = QSpinBox(objectName="smartbrush_seed")
    docker.seed.setRange(0, 2**31 - 1)  # Qt's int; the protocol allows larger seeds
    docker.random_seed.toggled.connect(lambda random: docker.seed.setEnabled(not random))
    row = QHBoxLayout()
    row.addWidget(docker.random_seed)
    row.addWidget(docker.seed, 1)
    form.addRow("Seed", row)
    docker.variations = spin_box("variations", objectName="smartbrush_variations")
    form.addRow("Variations", docker.variations)
    docker.detail = choice_box("detail", DETAIL_LABELS, objectName="smartbrush_detail")
    form.addRow("Detail", docker.detail)

    daemon = QGroupBox("Daemon")
    daemon_form = QFormLayout(daemon)
    docker.endpoint = QLineEdit(objectName="smartbrush_endpoint")
    docker.endpoint.setPlaceholderText(resolve_endpoint(None))
    docker.start_command = QLineEdit(objectName="smartbrush_start_command")
    daemon_form.addRow("Endpoint", docker.endpoint)
    daemon_form.addRow("Start with", docker.start_command)
    more.addWidget(daemon)
    docker.more.hide()

    def fold(shown: bool) -> None:
        docker.more.setVisible(shown)
        toggle.setArrowType(Qt.DownArrow if shown else Qt.RightArrow)

    toggle.toggled.connect(fold)
    layout.addWidget(docker.more)

    buttons = QHBoxLayout()
    docker.fill_button = QPushButton("Fill", objectName="smartbrush_fill_button")
    docker.fill_button.setToolTip("Fill the selection (Ctrl+Alt+B); the result is a new layer")
    docker.fill_button.clicked.connect(docker.start_fill)
    docker.remove_button = QPushButton("Remove", objectName="smartbrush_remove_button")
    docker.remove_button.setToolTip(
        "Erase what is selected and continue the background (the prompt is not used)"
    )
    docker.remove_button.clicked.connect(docker.start_remove)
    docker.cancel_button = QPushButton("Cancel", objectName="smartbrush_cancel_button")
    docker.cancel_button.clicked.connect(docker.cancel_fill)
    buttons.addWidget(docker.fill_button)
    buttons.addWidget(docker.remove_button)
    buttons.addWidget(docker.cancel_button)
    for button in (docker.fill_button, docker.remove_button, docker.cancel_button):
        button.setMinimumWidth(40)  # not as wide as Qt's default: the row fits a 250 px column
    layout.addLayout(buttons)
    docker.select_button = QPushButton(
        "Select painted object", objectName="smartbrush_select_object"
    )
    docker.select_button.setToolTip(
        "Make the shape of the object the last fill painted (as the model predicted it) the "
        "selection, to move, recolour or cut it out"
    )
    docker.select_button.clicked.connect(docker.select_painted_object)
    docker.select_button.setEnabled(False)
    layout.addWidget(docker.select_button)
    docker.progress = QProgressBar(objectName="smartbrush_progress")
    layout.addWidget(docker.progress)
    docker.message = QLabel(objectName="smartbrush_message")
    docker.message.setWordWrap(True)
    # room for three lines: a long message does not push the buttons around
    docker.message.setMinimumHeight(3 * docker.message.fontMetrics().lineSpacing())
    docker.message.setAlignment(Qt.AlignTop | Qt.AlignLeft)
    docker.message.setTextInteractionFlags(Qt.TextSelectableByMouse)
    layout.addWidget(docker.message)
    docker.start_button = QPushButton("Start daemon", objectName="smartbrush_start_daemon")
    docker.start_button.clicked.connect(docker.start_daemon)
    docker.start_button.hide()
    layout.addWidget(docker.start_button)
    docker.stop_button = QPushButton("Stop daemon", objectName="smartbrush_stop_daemon")
    docker.stop_button.setToolTip("Stop the daemon this docker started (it also stops with Krita)")
    docker.stop_button.clicked.connect(docker.stop_daemon)
    docker.stop_button.hide()
    layout.addWidget(docker.stop_button)
    docker.image = QLabel(objectName="smartbrush_preview")
    docker.image.setAlignment(Qt.AlignCenter)
    docker.image.setMinimumHeight(PREVIEW_SIDE // 2)
    layout.addWidget(docker.image)

    layout.addStretch(1)
    # In a scroll area the docker keeps the height the dock column gave it: More settings scrolls
    # inside it instead of taking rows from the Layers docker (which it never gave back) ...
    scroll = QScrollArea(objectName="smartbrush_scroll", widgetResizable=True)
    scroll.setFrameShape(QFrame.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
    scroll.setWidget(root)
    # ... but never squeezed below what the folded docker shows: prompt to preview, no scrolling
    scroll.setMinimumHeight(root.minimumSizeHint().height())
    docker.setWidget(scroll)


def spin_box(name: str, **kwargs) -> QSpinBox:
    """A spin box with the protocol's range for a fill option."""
    option = protocol.FILL_OPTIONS[name]
    box = QSpinBox(**kwargs)
    box.setRange(int(option.low), int(option.high))
    box.setToolTip(option.help[:1].upper() + option.help[1:])
    return box


def choice_box(name: str, labels: dict[str, str], **kwargs) -> QComboBox:
    """A combo box of a fill option's choices (the value as item data), the protocol's default set."""
    option = protocol.FILL_OPTIONS[name]
    box = QComboBox(**kwargs)
    for value in option.choices:
        box.addItem(labels.get(value, value), value)
    box.setCurrentIndex(box.findData(option.default))
    box.setToolTip(option.help[:1].upper() + option.help[1:])
    return box


def show_image(label: QLabel, image: dict) -> None:
    """Show a raw RGB or L image (a preview, a predicted mask) scaled into `label`."""
    formats = {"RGB": (QImage.Format_RGB888, 3), "L": (QImage.Format_Grayscale8, 1)}
    if image.get("mode") not in formats:
        return
    fmt, channels = formats[image["mode"]]
    width, height = image["width"], image["height"]
    qimage = QImage(image["data"], width, height, width * channels, fmt).copy()
    pixmap = QPixmap.fromImage(qimage).scaled(
        PREVIEW_SIDE, PREVIEW_SIDE, Qt.KeepAspectRatio, Qt.SmoothTransformation
    )
    label.setPixmap(pixmap)


def update_precision_label(docker) -> None:
    """The precision the docker will send: the slider's value, or auto's for the selection."""
    auto = docker.auto_precision.isChecked()
    docker.precision.setEnabled(not auto)
    if not auto:
        docker.precision_value.setText(f"{docker.precision.value() / 100:.2f}")
        return
    docker._selection_seen = None  # recompute for the current selection
    show_auto_precision(docker)


def show_auto_precision(docker) -> None:
    """Auto precision of the active selection, recomputed when the selection's box changes."""
    document = Krita.instance().activeDocument()
    seen = (document, selection_box(document))
    if seen != docker._selection_seen:
        docker._selection_seen = seen
        precision = selection_precision(document)
        text = "from the selection" if precision is None else describe_precision(precision)
        docker.precision_value.setText(("auto: " if precision is not None else "") + text)
        docker.precision_value.setToolTip(docker.precision_value.text())
