with recognised_orders as (
    select
        order_id,
        order_date,
        customer_id,
        sum(net_amount) as net_revenue,
        sum(cogs)       as cogs
    from recognised_lines
    group by order_id, order_date, customer_id
)
select
    cast(date_trunc('month', o.order_date) as DATE)                                  as month,
    c.region,
    c.segment,
    count(*)                                                                          as orders,
    count(distinct o.customer_id)                                                     as customers,
    cast(sum(o.net_revenue) as DECIMAL(14,2))                                         as net_revenue,
    cast(sum(o.cogs) as DECIMAL(14,2))                                                as cogs,
    cast(coalesce(sum(f.shipping_cost), 0) as DECIMAL(14,2))                          as shipping_cost,
    cast(sum(o.net_revenue) - sum(o.cogs) - coalesce(sum(f.shipping_cost), 0) as DECIMAL(14,2)) as contribution_margin,
    round(cast((sum(o.net_revenue) - sum(o.cogs) - coalesce(sum(f.shipping_cost), 0)) / sum(o.net_revenue) as DOUBLE), 4) as margin_pct
from recognised_orders o
join customers c on c.customer_id = o.customer_id
left join order_freight f on f.order_id = o.order_id
group by 1, 2, 3
order by 1, 2, 3
