-- pgbench script: the writes of one order, created and paid, as ONE SQL transaction.
--
-- The baseline of bench/bench_orders.py (which passes every :variable with -D and runs it as
-- `pgbench -n -M extended -c 16 -j 2 -T 20 -f bench/pgbench_order.sql lc_bench_orders`).
-- What POST /orders and POST /orders/{id}/pay write for an order of two products from a live
-- show (the same tables, rows, indexes, constraints and the ledger's deferred balance trigger):
-- lock the two product rows in id order and take one unit of each; the order, its two lines,
-- its history event, the partner event `order.created` with its four recipients and its webhook
-- delivery (the outbox); then lock the order, copy the commission rates onto the lines, mark it
-- paid, the commission application, the sale's ledger entry with its 14 lines, the history
-- event, `order.paid` with its recipients and delivery. Amounts, rates and the event payloads
-- are the ones the service wrote for a warm-up order (bench_orders.py passes them). No reads
-- the writes do not need: the ids of the accounts, plan and endpoint are passed in.
\set p1 random(1, :products)
\set p2 1 + (:p1 + random(0, :products - 2)) % :products
\set lo least(:p1, :p2)
\set hi greatest(:p1, :p2)
\set r random(1, 9000000000000000000)
BEGIN;
SELECT id, inventory FROM orders_product
 WHERE id IN (:product_prefix::text || lpad(:lo::text, 3, '0'), :product_prefix::text || lpad(:hi::text, 3, '0'))
 ORDER BY id FOR UPDATE;
UPDATE orders_product SET inventory = inventory - 1, updated = now()
 WHERE id = :product_prefix::text || lpad(:lo::text, 3, '0');
UPDATE orders_product SET inventory = inventory - 1, updated = now()
 WHERE id = :product_prefix::text || lpad(:hi::text, 3, '0');
INSERT INTO orders_order
    (id, status, currency, subtotal, shipping_amount, tax_amount, total, refunded_amount,
     refunded_shipping_amount, refunded_tax_amount, buyer_reference, buyer_email,
     shipping_address, payment_reference, carrier, tracking_number, commission_plan_id,
     created, updated, host_app_id, brand_id, fulfillment_partner_id, live_session_id,
     creator_id)
VALUES ('ord_pgb' || :r::text, 'pending_payment', 'USD', 2 * :price::bigint, :shipping::bigint,
        :tax::bigint, 2 * :price::bigint + :shipping::bigint + :tax::bigint, 0, 0, 0,
        'viewer-' || :client_id, 'viewer@example.com',
        '{"line1": "1 Main St", "city": "Austin", "country": "US"}', '', '', '', '',
        now(), now(), :host_app::text, :brand::text, :fulfiller::text, :session::text, :creator::text);
INSERT INTO orders_orderline
    (id, order_id, product_id, sku, title, category, quantity, unit_price, subtotal,
     refunded_quantity, refunded_amount, restocked_quantity, position)
VALUES ('oln_pgb' || :r::text || 'a', 'ord_pgb' || :r::text, :product_prefix::text || lpad(:p1::text, 3, '0'),
        'SKU-' || :p1, 'Product ' || :p1, 'beauty', 1, :price::bigint, :price::bigint, 0, 0, 0, 0),
       ('oln_pgb' || :r::text || 'b', 'ord_pgb' || :r::text, :product_prefix::text || lpad(:p2::text, 3, '0'),
        'SKU-' || :p2, 'Product ' || :p2, 'beauty', 1, :price::bigint, :price::bigint, 0, 0, 0, 1);
INSERT INTO orders_orderevent (id, order_id, type, from_status, to_status, actor, data, created)
VALUES ('oev_pgb' || :r::text || 'c', 'ord_pgb' || :r::text, 'created', '', 'pending_payment',
        'partner:' || :host_app::text, '{}', now());
INSERT INTO partners_event (id, type, object_id, sequence, data, body, created)
VALUES ('evt_pgb' || :r::text || 'c', 'order.created', 'ord_pgb' || :r::text, 1, :created_data::jsonb,
        :created_body::text, now());
INSERT INTO partners_eventrecipient (event_id, partner_id)
VALUES ('evt_pgb' || :r::text || 'c', :brand::text), ('evt_pgb' || :r::text || 'c', :creator::text),
       ('evt_pgb' || :r::text || 'c', :fulfiller::text), ('evt_pgb' || :r::text || 'c', :host_app::text);
INSERT INTO partners_webhookdelivery
    (id, event_id, endpoint_id, status, attempt_count, next_attempt_at, enqueued_at, last_error,
     created, updated)
VALUES ('wd_pgb' || :r::text || 'c', 'evt_pgb' || :r::text || 'c', :endpoint::text, 'pending', 0, now(), now(), '',
        now(), now());
SELECT id FROM orders_order WHERE id = 'ord_pgb' || :r::text FOR UPDATE;
UPDATE orders_orderline SET platform_rate_bps = :platform_bps::int, creator_rate_bps = :creator_bps::int,
       fulfillment_rate_bps = :fulfillment_bps::int
 WHERE order_id = 'ord_pgb' || :r::text;
UPDATE orders_order SET status = 'paid', paid_at = now(), payment_reference = 'pi_' || :r::text,
       commission_plan_id = :plan::text, updated = now()
 WHERE id = 'ord_pgb' || :r::text;
INSERT INTO commissions_commissionapplication
    (order_id, plan_id, fulfillment_fee_fixed, line_plans, created)
VALUES ('ord_pgb' || :r::text, :plan::text, 0,
        jsonb_build_object('oln_pgb' || :r::text || 'a', :plan::text, 'oln_pgb' || :r::text || 'b', :plan::text), now());
INSERT INTO commissions_ledgerentry
    (id, kind, order_id, refund_id, reference, currency, idempotency_key, memo, created)
VALUES ('je_pgb' || :r::text, 'sale', 'ord_pgb' || :r::text, NULL, '', 'USD', 'sale:' || 'ord_pgb' || :r::text,
        'Payment of ord_pgb' || :r::text || ' under plan ' || :plan::text, now());
INSERT INTO commissions_ledgerline
    (entry_id, account_id, partner_id, purpose, currency, kind, created, debit, credit, share,
     order_id, order_line_id, host_app_id, brand_id, creator_id, fulfillment_partner_id,
     live_session_id)
SELECT 'je_pgb' || :r::text, v.account, v.partner, v.purpose, 'USD', 'sale', now(), v.debit, v.credit,
       v.share, 'ord_pgb' || :r::text, v.line, :host_app::text, :brand::text, :creator::text, :fulfiller::text, :session::text
  FROM (VALUES
    (:acc_clearing::text, NULL::text, 'buyer_funds_clearing', :price::bigint, 0::bigint, 'merchandise', 'oln_pgb' || :r::text || 'a'),
    (:acc_platform::text, NULL, 'platform_revenue', 0, :platform::bigint, 'platform_commission', 'oln_pgb' || :r::text || 'a'),
    (:acc_creator::text, :creator::text, 'partner_pending', 0, :creator_share::bigint, 'creator_commission', 'oln_pgb' || :r::text || 'a'),
    (:acc_fulfiller::text, :fulfiller::text, 'partner_pending', 0, :fulfillment::bigint, 'fulfillment_fee', 'oln_pgb' || :r::text || 'a'),
    (:acc_brand::text, :brand::text, 'partner_pending', 0, :brand_net::bigint, 'brand_net', 'oln_pgb' || :r::text || 'a'),
    (:acc_clearing::text, NULL, 'buyer_funds_clearing', :price::bigint, 0, 'merchandise', 'oln_pgb' || :r::text || 'b'),
    (:acc_platform::text, NULL, 'platform_revenue', 0, :platform::bigint, 'platform_commission', 'oln_pgb' || :r::text || 'b'),
    (:acc_creator::text, :creator::text, 'partner_pending', 0, :creator_share::bigint, 'creator_commission', 'oln_pgb' || :r::text || 'b'),
    (:acc_fulfiller::text, :fulfiller::text, 'partner_pending', 0, :fulfillment::bigint, 'fulfillment_fee', 'oln_pgb' || :r::text || 'b'),
    (:acc_brand::text, :brand::text, 'partner_pending', 0, :brand_net::bigint, 'brand_net', 'oln_pgb' || :r::text || 'b'),
    (:acc_clearing::text, NULL, 'buyer_funds_clearing', :shipping::bigint, 0, 'shipping', NULL),
    (:acc_fulfiller::text, :fulfiller::text, 'partner_pending', 0, :shipping::bigint, 'shipping', NULL),
    (:acc_clearing::text, NULL, 'buyer_funds_clearing', :tax::bigint, 0, 'tax', NULL),
    (:acc_tax::text, NULL, 'tax_payable', 0, :tax::bigint, 'tax', NULL)
  ) AS v(account, partner, purpose, debit, credit, share, line);
INSERT INTO orders_orderevent (id, order_id, type, from_status, to_status, actor, data, created)
VALUES ('oev_pgb' || :r::text || 'p', 'ord_pgb' || :r::text, 'paid', 'pending_payment', 'paid',
        'partner:' || :host_app::text,
        jsonb_build_object('amount', :total_text::text, 'payment_reference', 'pi_' || :r::text), now());
INSERT INTO partners_event (id, type, object_id, sequence, data, body, created)
VALUES ('evt_pgb' || :r::text || 'p', 'order.paid', 'ord_pgb' || :r::text, 2, :paid_data::jsonb,
        :paid_body::text, now());
INSERT INTO partners_eventrecipient (event_id, partner_id)
VALUES ('evt_pgb' || :r::text || 'p', :brand::text), ('evt_pgb' || :r::text || 'p', :creator::text),
       ('evt_pgb' || :r::text || 'p', :fulfiller::text), ('evt_pgb' || :r::text || 'p', :host_app::text);
INSERT INTO partners_webhookdelivery
    (id, event_id, endpoint_id, status, attempt_count, next_attempt_at, enqueued_at, last_error,
     created, updated)
VALUES ('wd_pgb' || :r::text || 'p', 'evt_pgb' || :r::text || 'p', :endpoint::text, 'pending', 0, now(), now(), '',
        now(), now());
COMMIT;
