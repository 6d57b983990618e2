"""Template filters shared by every page: `{{ cost|money }}`, `{{ seconds|count }}`."""

from django import template

from muxweb import money as formats

register = template.Library()


@register.filter
def money(value):
    return formats.money(value)


@register.filter
def count(value):
    return formats.count(value)
