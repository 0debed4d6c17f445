-- One database per service; no service reads another's tables.
-- The postgres image runs this once, on the first start with an empty data volume, as the
-- POSTGRES_USER superuser (who therefore owns the databases). `store migrate` creates the tables.
CREATE DATABASE store_catalog;
CREATE DATABASE store_cart;
CREATE DATABASE store_orders;
CREATE DATABASE store_payments;
CREATE DATABASE store_notifications;
