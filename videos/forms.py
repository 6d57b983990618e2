"""The create form, validated against the model catalogue."""

import re
import uuid
import warnings
from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _
from PIL import Image

from muxweb.text import without_control_characters
from videos.images import REFERENCE_FORMATS, max_reference_pixels, rgb_on_white
from videos.models import ModelSpec

PROMPT_MAX_LENGTH = 32000

# What a form's one-time token may look like (we make uuid4 hex; the column holds 64).
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")


class PromptField(forms.CharField):
    """A prompt as it is sent: control characters removed before the length is checked (pasted
    text often carries them, and nobody can see them to delete them by hand)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(max_length=PROMPT_MAX_LENGTH, **kwargs)

    def to_python(self, value: object) -> str:
        if isinstance(value, str):
            value = without_control_characters(value)
        return super().to_python(value)


class TokenField(forms.CharField):
    """A form's one-time token. One we did not make (a tampered or broken form) is dropped rather
    than shown as an error nobody could fix: it only costs that post its double-post guard."""

    widget = forms.HiddenInput

    def clean(self, value: object) -> str:
        return value if isinstance(value, str) and _TOKEN.fullmatch(value) else ""


class CreateJobForm(forms.Form):
    """Field names are the API's own: prompt, model, seconds, size."""

    prompt = PromptField(
        label=_("Prompt"),
        widget=forms.Textarea(
            attrs={
                "rows": 3,
                "dir": "auto",
                "placeholder": _("Describe the shot: subject, action, camera, light…"),
            }
        ),
    )
    model = forms.ChoiceField(label=_("Model"))
    input_reference = forms.FileField(
        label=_("Reference image"),
        required=False,
        help_text=_("Optional first frame: JPEG, PNG or WebP."),
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )
    fit_reference = forms.BooleanField(
        label=_("Crop and resize the image to the video's size"), required=False, initial=True
    )
    # One per rendered form: posting the same form twice makes one job, not two paid ones.
    token = TokenField(required=False)
    seconds = forms.TypedChoiceField(label=_("Duration"), coerce=int)
    size = forms.ChoiceField(label=_("Size"))

    def __init__(self, *args, specs: list[ModelSpec], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.specs = {spec.name: spec for spec in specs}
        self.fields["model"].choices = [(spec.name, str(spec)) for spec in specs]
        if specs and not self.is_bound and "model" not in self.initial:
            self.initial["model"] = specs[0].name
        if not self.is_bound:
            self.initial["token"] = uuid.uuid4().hex
        # Any value of the catalogue is a valid choice; clean() then checks it against the model,
        # so the message can say what that model allows.
        all_seconds = sorted({s for sp in specs for s in sp.seconds})
        all_sizes = sorted({s for sp in specs for s in sp.sizes})
        self.fields["seconds"].choices = [(s, _("%(n)s s") % {"n": s}) for s in all_seconds]
        self.fields["size"].choices = [(s, size_label(s)) for s in all_sizes]
        # What the page offers: the selected model's own values.
        spec = self.selected_spec()
        self.seconds_options = [
            (s, label)
            for s, label in self.fields["seconds"].choices
            if not spec or s in spec.seconds
        ]
        self.size_options = [
            (s, label) for s, label in self.fields["size"].choices if not spec or s in spec.sizes
        ]
        if spec and not self.is_bound:
            # Keep what was picked where the model allows it, else take the model's first.
            if self.initial.get("seconds") not in spec.seconds:
                self.initial["seconds"] = spec.seconds[0] if spec.seconds else None
            if self.initial.get("size") not in spec.sizes:
                self.initial["size"] = spec.sizes[0] if spec.sizes else None

    @classmethod
    def for_choices(cls, specs: list[ModelSpec], data) -> "CreateJobForm":
        """An unbound form showing these choices (and prompt), fitted to the chosen model."""
        initial = {k: data.get(k) for k in ("prompt", "model", "size") if data.get(k)}
        offered = {str(s): s for spec in specs for s in spec.seconds}
        if (seconds := offered.get(data.get("seconds", ""))) is not None:
            initial["seconds"] = seconds
        return cls(specs=specs, initial=initial)

    def selected_spec(self) -> ModelSpec | None:
        name = self.data.get("model") if self.is_bound else self.initial.get("model")
        return self.specs.get(name or "")

    def clean_input_reference(self) -> Image.Image | None:
        upload = self.cleaned_data.get("input_reference")
        if not upload:
            return None
        return open_reference_image(upload, max_reference_pixels(self.specs.values()))

    def clean(self) -> dict:
        data = super().clean()
        spec = self.specs.get(data.get("model", ""))
        if spec is None:
            return data
        image = data.get("input_reference")
        refusals = spec.refusals(
            seconds=data.get("seconds"), size=data.get("size"), reference=image is not None
        )
        for field, message in refusals.items():
            self.add_error(field, message)
        if (
            "input_reference" not in refusals
            and image is not None
            and data.get("size")
            and not data.get("fit_reference")
        ):
            image_size = f"{image.width}x{image.height}"
            if image_size != data["size"]:
                self.add_error(
                    "input_reference",
                    _(
                        "The image is %(image)s but the video is %(video)s: the provider would "
                        "refuse it. Tick “Crop and resize” to fit it."
                    )
                    % {"image": image_size, "video": data["size"]},
                )
        data["spec"] = spec
        return data

    def estimated_cost(self) -> Decimal | None:
        """The price of the choices as they stand, for the live estimate beside the button."""
        spec = self.selected_spec()
        source = self.data if self.is_bound else self.initial
        try:
            seconds = int(source.get("seconds") or 0)
        except (TypeError, ValueError):
            return None
        price = spec.price_per_second(str(source.get("size") or "")) if spec else None
        if price is None or seconds not in (spec.seconds if spec else []):
            return None
        return (price * seconds).quantize(Decimal("0.01"))


class RemixForm(forms.Form):
    prompt = PromptField(
        label=_("What to change"),
        widget=forms.Textarea(
            attrs={"rows": 2, "dir": "auto", "placeholder": _("Same shot, but at night…")}
        ),
    )


MAX_REFERENCE_BYTES = 20 * 1024 * 1024


def open_reference_image(upload, max_pixels: int) -> Image.Image:
    """The uploaded image decoded in full as RGB, or a ValidationError that says what is wrong.
    Its size is checked against `max_pixels` from the header, before anything is decoded."""
    if upload.size > MAX_REFERENCE_BYTES:
        raise forms.ValidationError(_("The image is larger than 20 MB."))
    too_many_pixels = forms.ValidationError(_("The image has too many pixels."))
    try:
        with warnings.catch_warnings():
            # Pillow's own bomb warning, raised, so that nothing that large is ever decoded.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(upload) as probe:
                if probe.format not in REFERENCE_FORMATS:
                    raise forms.ValidationError(_("Use a JPEG, PNG or WebP image."))
                if probe.format == "JPEG" and probe.width * probe.height > max_pixels:
                    # A photo larger than needed (a phone's 12 Mpx) is decoded at 1/2, 1/4 or
                    # 1/8 of its size, which JPEG does cheaply, instead of being refused.
                    scale = 1
                    while scale < 8 and probe.width * probe.height > max_pixels * scale * scale:
                        scale *= 2
                    probe.draft("RGB", (probe.width // scale, probe.height // scale))
                if probe.width * probe.height > max_pixels:
                    raise too_many_pixels
                probe.load()  # decodes every byte: truncated files fail here
                # Leaving the block closes the file only: the decoded pixels stay with the image.
                image = rgb_on_white(probe)
    except forms.ValidationError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise too_many_pixels from None
    except (OSError, SyntaxError, ValueError):
        raise forms.ValidationError(_("This file is not an image that can be read.")) from None
    return image


def size_label(size: str) -> str:
    width, _x, height = size.partition("x")
    if not (width.isdigit() and height.isdigit()):
        return size
    shape = _("landscape") if int(width) > int(height) else _("portrait")
    if width == height:
        shape = _("square")
    return f"{size} · {shape}"
