-- The four tables of the platform that migration 019 indexes, reduced to the columns the
-- indexes use, and the seven indexes of `migrations/019-add-performance-indexes.sql` as
-- `production-fixes-phase2.md` describes them. Used by the index-audit tests.

CREATE TABLE payments (
    id          bigserial PRIMARY KEY,
    student_id  uuid        NOT NULL,
    status      text        NOT NULL,
    amount      numeric(12, 2) NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tutoring_sessions (
    id              bigserial PRIMARY KEY,
    student_id      uuid NOT NULL,
    trainer_id      uuid NOT NULL,
    status          text NOT NULL,
    scheduled_date  date NOT NULL,
    scheduled_time  time NOT NULL
);

CREATE TABLE trainer_allocations (
    id          bigserial PRIMARY KEY,
    student_id  uuid NOT NULL,
    trainer_id  uuid NOT NULL,
    course_id   uuid NOT NULL,
    status      text NOT NULL
);

CREATE TABLE student_course_purchases (
    id          bigserial PRIMARY KEY,
    student_id  uuid        NOT NULL,
    course_id   uuid        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS idx_payments_student_status_created
    ON payments (student_id, status, created_at DESC);

CREATE INDEX IF NOT EXISTS idx_sessions_student_status_date_time
    ON tutoring_sessions (student_id, status, scheduled_date ASC, scheduled_time ASC);
CREATE INDEX IF NOT EXISTS idx_sessions_trainer_date
    ON tutoring_sessions (trainer_id, scheduled_date);
CREATE INDEX IF NOT EXISTS idx_sessions_trainer_status
    ON tutoring_sessions (trainer_id, status);

CREATE INDEX IF NOT EXISTS idx_allocations_student_status_course
    ON trainer_allocations (student_id, status, course_id);
CREATE INDEX IF NOT EXISTS idx_allocations_trainer_status
    ON trainer_allocations (trainer_id, status);

CREATE INDEX IF NOT EXISTS idx_purchases_student_created
    ON student_course_purchases (student_id, created_at DESC);
