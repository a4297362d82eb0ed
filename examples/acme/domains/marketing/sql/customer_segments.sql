select
    customer_id,
    email,
    region,
    customer_segment,
    case
        when frequency = 0                             then 'prospect'
        when recency_days <= 90  and frequency >= 6    then 'champion'
        when recency_days <= 180 and frequency >= 3    then 'loyal'
        when signup_date > as_of - 90                  then 'new'
        when recency_days <= 180                       then 'active'
        when recency_days <= 365                       then 'at_risk'
        else 'hibernating'
    end                                                as rfm_segment,
    recency_days,
    frequency,
    monetary,
    marketing_opt_in,
    as_of
from rfm
order by customer_id
