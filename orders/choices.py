from django.db import models


class OrderStatus(models.TextChoices):
    PENDING_PAYMENT = "pending_payment", "Pending payment"
    PAID = "paid", "Paid"
    ACCEPTED = "accepted", "Accepted"
    SHIPPED = "shipped", "Shipped"
    DELIVERED = "delivered", "Delivered"
    COMPLETED = "completed", "Completed"
    CANCELED = "canceled", "Canceled"
    REFUNDED = "refunded", "Refunded"
    EXPIRED = "expired", "Expired (not paid before expires_at; its units went back on sale)"


class LiveSessionStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    LIVE = "live", "Live"
    ENDED = "ended", "Ended"
