"""Money and counts as the reader's language writes them."""

from decimal import Decimal

from django.utils.formats import number_format
from django.utils.translation import gettext as _


def money(amount: Decimal | int | float | None) -> str:
    """ "$1,234.50" in English, "US$1,234.50" in Chinese; an unknown amount is a dash. Prices in
    the catalogue are US dollars."""
    try:
        amount = Decimal(str(amount))
        if not amount.is_finite():
            raise ArithmeticError(amount)
        amount = amount.quantize(Decimal("0.01"))
    except ArithmeticError:
        # None, an empty or a non-number (an old activity entry's snapshot): unknown.
        return "—"
    digits = number_format(abs(amount), 2, use_l10n=True, force_grouping=True)
    # Translators: a price in US dollars; keep %(amount)s.
    text = _("$%(amount)s") % {"amount": digits}
    return f"−{text}" if amount < 0 else text


def count(value: int | None) -> str:
    """A whole number with the language's digit grouping: 12,345."""
    if value is None:
        return "—"
    return number_format(value, 0, use_l10n=True, force_grouping=True)
