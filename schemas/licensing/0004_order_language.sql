-- The language of an order's mails (registration, approval, e-mail change): the buyer's,
-- given when the order is added; NULL: the brand's default language of the order's account.
ALTER TABLE orders ADD COLUMN language text CHECK (language IN ('en', 'ja'));
