"""The team page's forms: adding a person, a role, a monthly budget, videos at once."""

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.utils.translation import gettext_lazy as _

from accounts.roles import Role


class AddPersonForm(forms.Form):
    username = forms.CharField(
        label=_("Username"),
        max_length=150,
        validators=[UnicodeUsernameValidator()],
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "none"}),
    )
    email = forms.EmailField(
        label=_("Email"),
        required=False,
        help_text=_("Optional. The set-password link is sent there too, if this site sends email."),
    )
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["role"].initial = Role.MEMBER

    def clean_username(self) -> str:
        # As Django's own user forms do: "ｍｉａ" and "mia" are one name.
        username = get_user_model().normalize_username(self.cleaned_data["username"])
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise forms.ValidationError(_("Someone already has this username."), code="taken")
        return username


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
    # Set by the confirmation page's form: a change that takes something away is asked first.
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)


class BudgetForm(forms.Form):
    amount = forms.DecimalField(
        label=_("Monthly budget"),
        required=False,
        min_value=0,
        max_digits=10,
        decimal_places=2,
        help_text=_("In US dollars. Empty: no limit."),
    )


class ConcurrencyForm(forms.Form):
    limit = forms.IntegerField(
        label=_("Videos at once"),
        required=False,
        min_value=1,
        max_value=1000,
        help_text=_("Videos of this person rendering at the provider at once. Empty: no limit."),
    )
