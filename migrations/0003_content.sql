-- Visibility of projects and threads (api.md §1.4) as SQL functions, so the one statement of
-- each thread/project endpoint checks the rules without planning their subqueries every time:
-- a PL/pgSQL function's inner queries are planned once per session and cached. The account
-- and soft-delete conditions stay in the calling query (src/modules/projects/visibility.ts),
-- where they can use the indexes.

-- A project of the viewer's account: private → its creator only; shared without a team →
-- every member; shared with a team → that team's members plus owners/admins (p_manager).
-- The creator always sees their own project.
CREATE FUNCTION project_visible_to(p_creator uuid, p_visibility text, p_team uuid, p_user uuid, p_manager boolean)
RETURNS boolean LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF p_creator = p_user THEN RETURN true; END IF;
  IF p_visibility <> 'shared' THEN RETURN false; END IF;
  IF p_team IS NULL OR p_manager THEN RETURN true; END IF;
  RETURN EXISTS (SELECT 1 FROM team_members tm WHERE tm.team_id = p_team AND tm.user_id = p_user);
END $$;

-- A thread of the viewer's account: its creator always; others only when it is not private
-- and in a shared, not deleted project of the account that they can see. A thread without a
-- project is personal to its creator.
CREATE FUNCTION thread_visible_to(p_creator uuid, p_private boolean, p_project uuid, p_account uuid, p_user uuid, p_manager boolean)
RETURNS boolean LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF p_creator = p_user THEN RETURN true; END IF;
  IF p_private OR p_project IS NULL THEN RETURN false; END IF;
  RETURN EXISTS (
    SELECT 1 FROM projects p
     WHERE p.id = p_project AND p.org_id = p_account AND p.deleted_at IS NULL AND p.visibility = 'shared'
       AND project_visible_to(p.created_by_user_id, p.visibility, p.team_id, p_user, p_manager));
END $$;

-- Has the user starred the thread (the Thread shape's `starred`)?
CREATE FUNCTION thread_starred_by(p_thread uuid, p_user uuid)
RETURNS boolean LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN EXISTS (SELECT 1 FROM thread_stars s WHERE s.user_id = p_user AND s.thread_id = p_thread);
END $$;
