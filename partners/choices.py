from django.db import models


class PartnerKind(models.TextChoices):
    HOST_APP = "host_app", "Host app"
    FULFILLMENT = "fulfillment", "Fulfillment partner"
    BRAND = "brand", "Brand"
    CREATOR = "creator", "Creator"


class PartnerStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"


class BrandAccess(models.TextChoices):
    OPEN = "open", "Open to every brand"
    INVITE_ONLY = "invite_only", "Only enrolled brands"


class StaffRole(models.TextChoices):
    OPS = "ops", "Operations"
    FINANCE = "finance", "Finance"


class PayoutSchedule(models.TextChoices):
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly"
    MONTHLY = "monthly", "Monthly"
