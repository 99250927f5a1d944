-- The receipt kept with each applied court order is the text sent back as it
-- was sent: an XML <Receipt> for orders pushed to the gateway, the JSON
-- feedback for orders pulled from the court platform. The column said XML.
ALTER TABLE court_orders RENAME COLUMN receipt_xml TO receipt_text;
