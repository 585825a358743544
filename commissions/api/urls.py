from django.urls import path
from rest_framework.routers import SimpleRouter

from commissions.api import debt_views, report_views, views
from commissions.settlements.api import views as settlement_views

router = SimpleRouter(trailing_slash=False)
router.register("commission-plans", views.CommissionPlanViewSet, basename="commission-plan")
router.register("settlements", settlement_views.SettlementViewSet, basename="settlement")
router.register("settlement-runs", settlement_views.SettlementRunViewSet, basename="settlement-run")

urlpatterns = [
    path("orders/<str:pk>/breakdown", views.OrderBreakdownView.as_view(), name="order-breakdown"),
    path("ledger/entries", views.LedgerEntryListView.as_view(), name="ledger-entry-list"),
    path("balances", views.BalanceView.as_view(), name="balances"),
    path("adjustments", debt_views.AdjustmentListCreateView.as_view(), name="adjustments"),
    path("statements", debt_views.StatementView.as_view(), name="statements"),
    path(
        "reports/commissions",
        report_views.CommissionReportView.as_view(),
        name="commission-report",
    ),
    path("reports/commissions/chart", report_views.commission_chart_view, name="report-chart"),
    path("reports/chart-links", report_views.ChartLinkView.as_view(), name="report-chart-links"),
    path(
        "reports/reconciliation",
        report_views.ReconciliationReportView.as_view(),
        name="report-reconciliation",
    ),
    *router.urls,
]
