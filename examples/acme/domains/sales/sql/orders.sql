-- One row per order: order-level attributes are the same on every line of an order.
select
    order_id,
    customer_id,
    order_date,
    channel,
    order_status,
    currency,
    cast(count(*) as INTEGER)                 as line_count,
    cast(sum(quantity) as INTEGER)            as items,
    cast(sum(gross_amount) as DECIMAL(12,2))  as gross_amount,
    cast(sum(discount_amount) as DECIMAL(12,2)) as discount_amount,
    cast(sum(net_amount) as DECIMAL(12,2))    as net_amount
from order_lines
group by order_id, customer_id, order_date, channel, order_status, currency
order by order_id
