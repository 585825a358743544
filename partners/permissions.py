"""Who may call what: staff roles and partner kinds, declared per action."""

from rest_framework.permissions import BasePermission

from partners.authentication import Caller


class IsAuthenticatedCaller(BasePermission):
    """Any valid key (the default for every API view)."""

    # Who may call, as the API docs say it (livecommerce.schema reads this).
    callers = "any API key: partners of every kind and staff"

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, Caller)


def allow(*, staff: tuple[str, ...] = (), partners: tuple[str, ...] = ()) -> type[BasePermission]:
    """A permission class admitting the given staff roles and partner kinds.

    ``allow(staff=("ops",), partners=("host_app",))`` admits ops staff and host apps; everyone
    else gets 403 (the role may not do this at all, so nothing about the object leaks).
    """

    names = {"host_app": "host app", "fulfillment": "fulfillment"}
    who = ", ".join(
        [*(f"{r} staff" for r in staff), *(f"{names.get(k, k)} partners" for k in partners)]
    )

    class Allowed(IsAuthenticatedCaller):
        message = f"Only {who or 'nobody'} may do this."
        callers = who or "nobody"

        def has_permission(self, request, view) -> bool:
            caller = request.user
            if not isinstance(caller, Caller):
                return False
            return caller.is_role(*staff) or caller.is_kind(*partners)

    Allowed.__name__ = f"Allow[{who}]"
    return Allowed


class ActionPermissionsMixin:
    """Per-action permissions on a viewset: ``action_permissions = {"list": allow(...), ...}``.

    An action missing from the map is refused, so a new action must state who may call it.
    """

    action_permissions: dict[str, type[BasePermission]] = {}

    def get_permissions(self):
        action = getattr(self, "action", None)
        if action is None:
            # The method is not routed: let DRF answer 405 rather than 403.
            return [IsAuthenticatedCaller()]
        permission = self.action_permissions.get(action) or allow()
        return [permission()]
