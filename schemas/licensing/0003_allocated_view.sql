-- The licensing view of an account that an MSP sub-allocated licenses to: its pools are
-- its own rows (tenant_path is the account's), and through them it reads the order, the
-- order line and the server those licenses belong to, although they sit in the MSP's
-- account. Reading only: changing them still takes the MSP's scope (the *_scope policies).
CREATE POLICY orders_allocated ON orders FOR SELECT
    USING (EXISTS (SELECT 1 FROM pools p WHERE p.order_id = orders.id AND NOT p.is_default
                   AND scope_tree_visible(p.msp_id, p.tenant_path)));
CREATE POLICY order_lines_allocated ON order_lines FOR SELECT
    USING (EXISTS (SELECT 1 FROM pools p WHERE p.line_id = order_lines.id AND NOT p.is_default
                   AND scope_tree_visible(p.msp_id, p.tenant_path)));
CREATE POLICY activations_allocated ON activations FOR SELECT
    USING (EXISTS (SELECT 1 FROM pools p WHERE p.activation_id = activations.id
                   AND scope_tree_visible(p.msp_id, p.tenant_path)));
