/*
 * api/auth — who may change what, from the caller's SO_PEERCRED.
 *
 * Rules (proto/API.md "Access"): anyone may read; a job's owner or an admin may cancel it
 * (and, later, report its status); fleet changes (import, drain, resume) need an admin.
 * An admin is root, or a user whose primary or supplementary groups include the
 * configured admin group. Never: trusts anything the client says about itself. Group
 * lists are looked up once per uid and cached (NSS may be slow).
 */
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define AUTH_MAX_GROUPS 256

/* Is uid (primary gid) a member of the admin group? Cached per uid. */
static bool member(struct api *a, uid_t uid, gid_t gid)
{
	gid_t admin = (gid_t)a->opt.admin_gid;
	uint32_t v;

	if (gid == admin)
		return true;
	if (hmap_get_u64(&a->admin_by_uid, uid, &v))
		return v != 0;
	bool yes = false;
	struct passwd pw, *res = NULL;
	char buf[2048];
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res) {
		gid_t groups[AUTH_MAX_GROUPS];
		int n = AUTH_MAX_GROUPS;
		if (getgrouplist(res->pw_name, res->pw_gid, groups, &n) >= 0)
			for (int i = 0; i < n && !yes; i++)
				yes = groups[i] == admin;
	}
	hmap_put_u64(&a->admin_by_uid, uid, yes ? 1 : 0); /* a failed cache put only costs time */
	return yes;
}

bool api_is_admin(struct api *a, uid_t uid, gid_t gid)
{
	if (uid == 0)
		return true;
	if (a->opt.admin_gid < 0)
		return false;
	return member(a, uid, gid);
}

int api_require_admin(struct ctx *c, const char *what)
{
	if (api_is_admin(c->a, c->req->uid, c->req->gid))
		return 0;
	return err_set(&c->err, ERR_FORBIDDEN, NULL,
		       "%s needs an admin: root or a member of the admin group%s%s", what,
		       c->a->opt.admin_gid >= 0 ? " " : " (none is configured)",
		       c->a->opt.admin_group);
}
