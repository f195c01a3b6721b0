-- One verified phone per app: phone_idx (the blind index) is set only once a number is
-- verified, so unverified numbers never collide and verified ones cannot be shared.
CREATE UNIQUE INDEX users_phone ON users(app_id, phone_idx);
